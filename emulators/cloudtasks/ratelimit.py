"""Per-queue dispatch admission: a token bucket for ``max_dispatches_per_second`` and a count
of in-flight requests for ``max_concurrent_dispatches``.

Hand-written because the lesson is the exact production shape (a bucket of ``max_burst_size``
tokens refilled continuously at the rate, one token per attempt) driven by the emulator's own
clock, which the general-purpose rate limiters on PyPI do not take.
"""

from __future__ import annotations

import math

_EPSILON = 1e-3
"""Slack for float refill arithmetic: epoch timestamps carry ~0.2 µs of rounding, so a token
due at t must count as available at t (it is at most 2 µs early at 500/s). A token taken with
the slack leaves a small debt, repaid by the refill, so the slack never adds up to a rate
above the configured one."""


def derived_burst(rate: float) -> int:
    """``max_burst_size`` for a rate. Production picks it from the rate without documenting
    how; this deterministic choice gives 100 at the 500/s maximum (the value production
    reports for default queues) and a small burst for slow queues."""
    if rate >= 500:
        return 100
    if rate >= 50:
        return 20
    if rate >= 1:
        return 10
    return 5


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; starts full."""

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self._tokens = float(capacity)
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
            self._updated = now

    def try_take(self, now: float) -> bool:
        """Take one token if one is available at ``now``."""
        self._refill(now)
        if self._tokens >= 1 - _EPSILON:
            self._tokens -= 1
            return True
        return False

    def next_token_at(self, now: float) -> float:
        """When the next whole token will be available (``now`` if one is)."""
        self._refill(now)
        if self._tokens >= 1 - _EPSILON:
            return now
        if self.rate <= 0:
            return math.inf
        return now + (1 - self._tokens) / self.rate

    def reconfigure(self, rate: float, capacity: int, now: float) -> None:
        self._refill(now)
        self.rate = rate
        self.capacity = capacity
        self._tokens = min(self._tokens, float(capacity))
