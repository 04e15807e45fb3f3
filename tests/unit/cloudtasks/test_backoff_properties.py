"""The retry schedule against the RetryConfig reference, for any policy (Hypothesis).

The reference is written the way the docs describe it, step by step: "the interval starts at
min_backoff, then doubles max_doublings times, then increases linearly, and finally retries at
intervals of max_backoff"
(https://cloud.google.com/tasks/docs/reference/rpc/google.cloud.tasks.v2#retryconfig),
while the module under test computes each delay in closed form.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.cloudtasks.backoff import RETENTION_SECONDS, RetryPolicy, retry_delay, should_stop

seconds = st.floats(min_value=0.001, max_value=100_000, allow_nan=False, allow_infinity=False)


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    low, high = sorted((draw(seconds), draw(seconds)))
    return RetryPolicy(
        max_attempts=draw(st.integers(-1, 1000)),
        min_backoff=low,
        max_backoff=high,
        max_doublings=draw(st.integers(0, 20)),
        max_retry_duration=draw(st.sampled_from([0.0, 1.0, 60.0, 3600.0])),
    )


def documented_schedule(policy: RetryPolicy, retries: int) -> list[float]:
    """The delay before each of the first ``retries`` retries, one step at a time."""
    delays, interval = [], policy.min_backoff
    for number in range(1, retries + 1):
        if number == 1:
            interval = policy.min_backoff
        elif number - 1 <= policy.max_doublings:
            interval *= 2
        else:
            interval += policy.min_backoff * 2**policy.max_doublings
        delays.append(min(interval, policy.max_backoff))
    return delays


@given(policies(), st.integers(1, 60))
def test_every_delay_follows_the_documented_schedule(policy: RetryPolicy, retries: int) -> None:
    """Doubling max_doublings times, then linear growth, never above max_backoff."""
    expected = documented_schedule(policy, retries)
    actual = [retry_delay(number, policy) for number in range(1, retries + 1)]
    assert actual == pytest.approx(expected, rel=1e-9)


@given(policies(), st.integers(1, 200))
def test_delays_never_shrink_and_stay_within_the_bounds(policy: RetryPolicy, number: int) -> None:
    """Each retry waits at least as long as the one before, from min_backoff to max_backoff."""
    delay = retry_delay(number, policy)
    assert policy.min_backoff <= delay <= policy.max_backoff
    assert retry_delay(number + 1, policy) >= delay


@given(policies())
def test_the_interval_reaches_max_backoff_and_stays(policy: RetryPolicy) -> None:
    """Past the doublings the growth is linear, so max_backoff is reached after finitely many
    retries (ratio / 2**doublings + doublings of them) and then repeats."""
    ratio = policy.max_backoff / (policy.min_backoff * 2**policy.max_doublings)
    reached = policy.max_doublings + int(ratio) + 2
    assert retry_delay(reached, policy) == policy.max_backoff
    assert retry_delay(reached + 1, policy) == policy.max_backoff


@given(policies(), st.integers(-5, 0))
def test_retry_numbers_start_at_one(policy: RetryPolicy, number: int) -> None:
    with pytest.raises(ValueError, match=r"^retry numbers start at 1$"):
        retry_delay(number, policy)


def test_first_linear_step_after_the_doublings() -> None:
    """With 2 doublings from 1 s: 1, 2, 4, then +4 each retry: 8, 12 (a closed form that is off
    by one at the switch from doubling to linear shows here)."""
    policy = RetryPolicy(100, 1, 1000, 2, 0)
    assert [retry_delay(n, policy) for n in range(1, 6)] == [1, 2, 4, 8, 12]


@given(
    max_attempts=st.integers(1, 50),
    max_duration=st.sampled_from([0.0, 1.0, 10.0, 60.0]),
    attempts=st.integers(1, 100),
    age=st.floats(0, 200, allow_nan=False) | st.sampled_from([0.0, 0.5, 1.0]),
)
def test_stop_exactly_when_both_limits_are_met(
    max_attempts: int, max_duration: float, attempts: int, age: float
) -> None:
    """A task stops once attempts >= max_attempts *and* (no age limit, or age >=
    max_retry_duration); both comparisons are inclusive."""
    policy = RetryPolicy(max_attempts, 0.1, 10, 3, max_duration)
    attempts_met = attempts >= max_attempts
    age_met = max_duration == 0 or age >= max_duration
    assert should_stop(attempts, age, policy) is (attempts_met and age_met)


@given(st.integers(1, 10**6), st.floats(0, RETENTION_SECONDS, allow_nan=False))
def test_unlimited_attempts_never_stop_on_their_own(attempts: int, age: float) -> None:
    """max_attempts = -1 is never reached, whatever the duration limit and the task's age."""
    for duration in (0.0, 1.0, 3600.0):
        assert not should_stop(attempts, age, RetryPolicy(-1, 0.1, 10, 3, duration))


@pytest.mark.parametrize(
    ("attempts", "age", "stop"),
    [(2, 59.999, False), (3, 59.999, False), (2, 60.0, False), (3, 60.0, True)],
)
def test_stop_boundaries_are_inclusive(attempts: int, age: float, stop: bool) -> None:
    """max_attempts 3 and max_retry_duration 60 s: the 3rd failure at exactly 60 s stops."""
    assert should_stop(attempts, age, RetryPolicy(3, 0.1, 10, 3, 60.0)) is stop
