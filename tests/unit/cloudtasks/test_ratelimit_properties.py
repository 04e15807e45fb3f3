"""The dispatch token bucket against an exact reference model (Hypothesis).

The model keeps the token count as a fraction, refilled at ``rate`` per second up to
``capacity`` and starting full, and grants a take when at least one token is there, less the
module's documented slack of a thousandth of a token for float rounding. Times are multiples of
1/256 s and rates multiples of 1/4 per second, so every refill is a multiple of 1/1024 token and
the bucket's float arithmetic is exact too: any difference is a real one, and 1023/1024 of a
token (inside the slack) is reached often.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.cloudtasks.ratelimit import TokenBucket, derived_burst

SLACK = Fraction(1, 1000)
TICK = Fraction(1, 256)
rates = st.integers(0, 2000).map(lambda quarters: Fraction(quarters, 4)) | st.sampled_from(
    [Fraction(1023, 4 * ticks) for ticks in (1, 3, 11, 31, 33, 93)]
)
"""Any rate, and rates whose refill reaches 1023/1024 of a token in whole ticks."""
capacities = st.integers(1, 100)
steps = st.lists(
    st.tuples(st.sampled_from(["take", "take", "next", "reconfigure"]),
              st.integers(0, 2000) | st.integers(0, 3), rates, capacities),
    max_size=80,
)  # fmt: skip


class Model:
    def __init__(self, rate: Fraction, capacity: int) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens = Fraction(capacity)
        self.updated = Fraction(0)

    def refill(self, now: Fraction) -> None:
        if now > self.updated:
            gained = (now - self.updated) * self.rate
            self.tokens = min(Fraction(self.capacity), self.tokens + gained)
            self.updated = now

    def available(self, now: Fraction) -> bool:
        self.refill(now)
        return self.tokens >= 1 - SLACK

    def take(self) -> bool:
        if self.tokens >= 1 - SLACK:
            self.tokens -= 1  # a token taken within the slack is owed, not forgiven
            return True
        return False


@given(rates, capacities, steps)
def test_bucket_matches_the_reference_model(
    rate: Fraction, capacity: int, operations: list[tuple[str, int, Fraction, int]]
) -> None:
    """Takes, next-token times and reconfigurations at increasing times give the model's
    answers: a take succeeds exactly when a whole token (less the slack) has accumulated, and
    the next token is due exactly when the refill completes it."""
    now = Fraction(0)
    bucket, model = TokenBucket(float(rate), capacity, now=0.0), Model(rate, capacity)
    for action, ticks, new_rate, new_capacity in operations:
        now += ticks * TICK
        available = model.available(now)
        if action == "take":
            assert bucket.try_take(float(now)) is model.take() is available
        elif action == "next":
            due = bucket.next_token_at(float(now))
            if available:
                assert due == float(now)
            elif model.rate == 0:
                assert due == math.inf
            else:
                expected = now + (1 - model.tokens) / model.rate
                assert due == pytest.approx(float(expected), rel=1e-12)
        else:
            bucket.reconfigure(float(new_rate), new_capacity, float(now))
            model.rate, model.capacity = new_rate, new_capacity
            model.tokens = min(model.tokens, Fraction(new_capacity))


@given(rates.filter(bool), capacities, st.integers(1, 4000))
def test_polling_never_beats_the_rate(rate: Fraction, capacity: int, ticks: int) -> None:
    """However often a dispatcher asks (here every 1/256 s), it gets at most the capacity plus
    the tokens refilled meanwhile: a token granted within the rounding slack is owed, so at
    255.75/s polled every 1/256 s the bucket does not hand out 256 tokens a second."""
    bucket = TokenBucket(float(rate), capacity, now=0.0)
    taken = sum(bucket.try_take(float(tick * TICK)) for tick in range(ticks + 1))
    assert taken <= capacity + math.floor(ticks * TICK * rate + SLACK)


@given(st.integers(1, 2000).map(lambda q: Fraction(q, 4)), capacities, st.integers(1, 5000))
def test_taking_each_token_when_due_keeps_the_configured_rate(
    rate: Fraction, capacity: int, span_ms: int
) -> None:
    """Taking every token at the time next_token_at announces yields the capacity plus one
    token per 1/rate seconds: the burst, then exactly the rate, however many are taken."""
    horizon = Fraction(span_ms, 1000)
    refilled = horizon * rate
    bucket = TokenBucket(float(rate), capacity, now=0.0)
    taken, now = 0, 0.0
    while (due := bucket.next_token_at(now)) <= horizon:
        assert bucket.try_take(due)
        taken, now = taken + 1, due
    # the last token may fall a rounding error either side of an exactly-due horizon
    exact = capacity + math.floor(refilled)
    assert taken == exact or (refilled.denominator == 1 and taken == exact - 1)


def test_a_token_within_the_slack_is_owed() -> None:
    """At 255.75/s polled every 1/256 s each poll adds 1023/1024 of a token, inside the slack:
    a bucket that forgave the missing 1/1024 would grant every poll (1 + 1024 tokens in 4 s);
    this one stays within its burst plus 4 s of its rate."""
    bucket = TokenBucket(255.75, 1, now=0.0)
    assert sum(bucket.try_take(tick / 256) for tick in range(1025)) <= 1 + 1023


@given(rates, capacities)
def test_a_full_bucket_gives_its_capacity_at_once_then_waits(rate: int, capacity: int) -> None:
    bucket = TokenBucket(rate, capacity, now=100.0)
    assert all(bucket.try_take(100.0) for _ in range(capacity))
    assert not bucket.try_take(100.0)
    due = bucket.next_token_at(100.0)
    assert due == (math.inf if rate == 0 else pytest.approx(100.0 + 1 / rate))
    if rate:
        assert bucket.try_take(due)


def test_a_token_due_now_is_available_now() -> None:
    """The slack's purpose: at 0.999/s a token is 0.999 complete after 1 s (a float's worth
    short of whole), and it counts as available at that instant, by both calls."""
    bucket = TokenBucket(rate=0.999, capacity=1, now=0.0)
    assert bucket.try_take(0.0)
    assert bucket.next_token_at(1.0) == 1.0
    assert bucket.try_take(1.0)
    assert not bucket.try_take(1.0)


def test_a_partly_spent_burst_is_available_at_once() -> None:
    """With 1.5 tokens left a take needs no wait (one whole token is there)."""
    bucket = TokenBucket(rate=1, capacity=3, now=0.0)
    assert bucket.try_take(0.0)
    assert bucket.try_take(0.0)
    assert bucket.next_token_at(0.5) == 0.5
    assert bucket.try_take(0.5)
    assert bucket.next_token_at(0.5) == pytest.approx(1.0)


def test_time_going_backwards_neither_refills_nor_breaks_the_bucket() -> None:
    """An earlier ``now`` (a clock step back) adds no tokens and later refills count from the
    latest time seen."""
    bucket = TokenBucket(rate=10, capacity=1, now=5.0)
    assert bucket.try_take(5.0)
    assert not bucket.try_take(4.0)
    assert bucket.next_token_at(4.0) == pytest.approx(4.1)
    assert not bucket.try_take(5.05)
    assert bucket.try_take(5.1)


def test_reconfigure_keeps_the_tokens_earned_at_the_old_rate_up_to_the_new_capacity() -> None:
    bucket = TokenBucket(rate=1, capacity=5, now=0.0)
    assert all(bucket.try_take(0.0) for _ in range(5))
    bucket.reconfigure(rate=100, capacity=2, now=3.0)  # 3 tokens earned at 1/s, 2 kept
    assert [bucket.try_take(3.0) for _ in range(3)] == [True, True, False]
    assert bucket.next_token_at(3.0) == pytest.approx(3.01)
    assert (bucket.rate, bucket.capacity) == (100, 2)


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(500, 100), (499.99, 20), (50, 20), (49.99, 10), (1, 10), (0.99, 5), (0, 5)],
)
def test_derived_burst_steps_at_500_50_and_1_per_second(rate: float, burst: int) -> None:
    """max_burst_size is 100 at 500/s (production's default queues), 20 from 50/s, 10 from
    1/s and 5 below."""
    assert derived_burst(rate) == burst


@given(st.floats(0, 500), st.floats(0, 500))
def test_a_faster_queue_never_gets_a_smaller_burst(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert derived_burst(low) <= derived_burst(high)
