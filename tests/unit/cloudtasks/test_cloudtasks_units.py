"""The retry schedule, stop rule, token bucket and tombstones on their own (no server)."""

from __future__ import annotations

import pytest

from emulators.cloudtasks.backoff import RetryPolicy, retry_delay, should_stop
from emulators.cloudtasks.ratelimit import TokenBucket, derived_burst
from emulators.cloudtasks.store import Tombstones
from emulators.cloudtasks.tokens import TokenSigner

DOCUMENTED = RetryPolicy(
    max_attempts=100, min_backoff=10, max_backoff=300, max_doublings=3, max_retry_duration=0
)


def test_documented_backoff_example() -> None:
    """min 10 s, max 300 s, 3 doublings: 10, 20, 40, 80, then linear 160, 240, capped 300."""
    delays = [retry_delay(n, DOCUMENTED) for n in range(1, 9)]
    assert delays == [10, 20, 40, 80, 160, 240, 300, 300]


def test_zero_doublings_is_linear_from_the_start() -> None:
    """With max_doublings 0 the interval grows by min_backoff each retry."""
    policy = RetryPolicy(100, 1, 100, 0, 0)
    assert [retry_delay(n, policy) for n in range(1, 5)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("max_attempts", "max_duration", "attempts", "age", "stop"),
    [
        (3, 0, 2, 1000, False),  # attempts not reached; no age limit
        (3, 0, 3, 0, True),  # attempts reached; no age limit
        (3, 60, 3, 30, False),  # attempts reached, duration not: keep going
        (3, 60, 2, 90, False),  # duration reached, attempts not: keep going
        (3, 60, 5, 61, True),  # both reached
        (-1, 0, 10_000, 10**6, False),  # unlimited attempts, unlimited age
        (-1, 60, 10_000, 10**6, False),  # -1 is never reached: both limits can never be met
    ],
)
def test_stop_only_when_both_limits_are_reached(
    max_attempts: int, max_duration: float, attempts: int, age: float, stop: bool
) -> None:
    """Cloud Tasks stops retrying only when max_attempts and max_retry_duration are both met."""
    policy = RetryPolicy(max_attempts, 0.1, 10, 3, max_duration)
    assert should_stop(attempts, age, policy) is stop


def test_token_bucket_spaces_dispatches_after_the_burst() -> None:
    """A full bucket lets ``burst`` dispatches through at once, then one per 1/rate seconds."""
    bucket = TokenBucket(rate=5, capacity=derived_burst(5), now=0.0)
    taken = sum(bucket.try_take(0.0) for _ in range(50))
    assert taken == 10
    assert bucket.next_token_at(0.0) == pytest.approx(0.2)
    assert not bucket.try_take(0.19)
    assert bucket.try_take(0.2)


def test_tombstones_expire_and_are_swept() -> None:
    """A name is held for the period after it was added (re-adding restarts it), and expired
    names are dropped as new ones arrive, so memory stays bounded by one period of names."""
    tombstones = Tombstones(period=10)
    tombstones.add("a", now=0)
    tombstones.add("b", now=5)
    assert tombstones.holds("a", now=9.9)
    assert not tombstones.holds("a", now=10)
    tombstones.add("c", now=11)
    assert len(tombstones) == 2
    tombstones.add("b", now=12)
    assert tombstones.holds("b", now=21)


def test_id_tokens_are_reused_until_near_expiry() -> None:
    """The same account and audience get the same token until 5 minutes before it expires;
    another audience gets its own."""
    signer = TokenSigner("http://127.0.0.1:1")
    first = signer.id_token("a@b.c", "http://x/hook", now=1000.0)
    assert signer.id_token("a@b.c", "http://x/hook", now=1000.0 + 3000) == first
    assert signer.id_token("a@b.c", "http://x/other", now=1000.0) != first
    renewed = signer.id_token("a@b.c", "http://x/hook", now=1000.0 + 3301)
    assert renewed != first
