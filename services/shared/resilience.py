"""Circuit breaker, bulkhead and timeout around one downstream (asyncio).

    ResilienceError             base: the call was refused before reaching the downstream
    ├── CircuitOpenError        the breaker is open (or half-open with its trial in flight)
    └── BulkheadFullError       the downstream's concurrency bound is reached

:class:`Downstream` composes the three in the order that keeps each honest: the breaker is
asked first (an open breaker fails fast and takes no bulkhead slot), then the bulkhead (a
saturated caller is rejected at once instead of queueing, and a rejection is not counted as a
downstream failure), then the timeout (a hung downstream counts as a failure). Retries are not
here on purpose: they belong to whoever redelivers (the Cloud Tasks queue's retry config).

Why hand-written: the breaker's state machine and its counters are the lesson caplab teaches,
and they must be observable (``snapshot()``) by tests, the lab and ``/metrics``-style
endpoints. The libraries considered do not fit asyncio cleanly: ``pybreaker`` (1.4) runs
async calls only through Tornado, ``aiobreaker`` (1.2) has had no release since 2021, and
``purgatory`` has no bulkhead. The timeout is the standard library's ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.config import Config

from caplab.core.durations import parse_duration

T = TypeVar("T")


class ResilienceError(Exception):
    """A call refused locally, before it reached the downstream."""


class CircuitOpenError(ResilienceError):
    def __init__(self, name: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"circuit {name!r} is open; next trial in {retry_after:.2f}s")


class BulkheadFullError(ResilienceError):
    def __init__(self, name: str, limit: int) -> None:
        super().__init__(f"bulkhead {name!r} is full ({limit} calls in flight)")


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class BreakerCounters:
    """Cumulative since the breaker was created."""

    successes: int = 0
    failures: int = 0
    rejections: int = 0
    """Calls failed fast because the breaker was open."""
    opened: int = 0
    """Transitions into OPEN (from CLOSED or from a failed half-open trial)."""
    closed: int = 0
    """Transitions from HALF_OPEN back to CLOSED (recoveries)."""


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``reset_timeout`` seconds
    lets one trial call through (HALF_OPEN): its success closes the breaker, its failure
    opens it again for another ``reset_timeout``. Every other call while open, or while the
    trial is in flight, fails fast with :class:`CircuitOpenError`.

    Single event loop, no locks: state changes happen between awaits only.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.counters = BreakerCounters()
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose timeout has elapsed reads HALF_OPEN."""
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_timeout
        ):
            self._state = BreakerState.HALF_OPEN
        return self._state

    def _admit(self) -> bool:
        """Let a call through or raise :class:`CircuitOpenError`; True for the half-open
        trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        self.counters.rejections += 1
        remaining = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        raise CircuitOpenError(self.name, remaining)

    def _end_trial(self, trial: bool) -> None:
        if trial:
            self._trial_in_flight = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self.counters.opened += 1

    def _on_success(self, trial: bool) -> None:
        self.counters.successes += 1
        self._consecutive_failures = 0
        if trial:
            self._trial_in_flight = False
            self._state = BreakerState.CLOSED
            self.counters.closed += 1

    def _on_failure(self, trial: bool) -> None:
        self.counters.failures += 1
        self._consecutive_failures += 1
        if trial:
            self._trial_in_flight = False
            self._open()
        elif (
            self._state is BreakerState.CLOSED
            and self._consecutive_failures >= self.failure_threshold
        ):
            self._open()

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` if the breaker admits it. An exception it raises is a failure
        (and is re-raised), except a local refusal (:class:`ResilienceError`) and
        cancellation, which count as neither success nor failure.

        Only the half-open trial's outcome moves the breaker out of HALF_OPEN: a call admitted
        earlier, while the breaker was closed, that ends during the trial is counted but
        neither closes, reopens nor frees the trial's place."""
        trial = self._admit()
        try:
            result = await operation()
        except ResilienceError:
            # Refused locally (e.g. by the bulkhead): says nothing about the downstream.
            self._end_trial(trial)
            raise
        except Exception:
            self._on_failure(trial)
            raise
        except BaseException:
            # Cancelled by our own caller: neither a success nor a downstream failure.
            self._end_trial(trial)
            raise
        self._on_success(trial)
        return result

    def snapshot(self) -> dict[str, object]:
        return {
            "state": self.state.value,
            "consecutive_failures": self._consecutive_failures,
            "failure_threshold": self.failure_threshold,
            "reset_timeout_seconds": self.reset_timeout,
            **vars(self.counters),
        }


@dataclass
class Bulkhead:
    """At most ``limit`` calls in flight; the next one is rejected at once (no queue), so a
    slow downstream cannot take every worker of the caller with it."""

    name: str
    limit: int
    in_flight: int = 0
    rejections: int = 0
    peak: int = 0

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self.in_flight >= self.limit:
            self.rejections += 1
            raise BulkheadFullError(self.name, self.limit)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await operation()
        finally:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "in_flight": self.in_flight,
            "peak": self.peak,
            "rejections": self.rejections,
        }


@dataclass
class Downstream:
    """One downstream's breaker, bulkhead and timeout, composed (see the module docstring)."""

    name: str
    breaker: CircuitBreaker
    bulkhead: Bulkhead
    timeout: float

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(self.timeout):
                return await operation()

        return await self.breaker.call(lambda: self.bulkhead.call(bounded))

    def snapshot(self) -> dict[str, object]:
        return {
            "timeout_seconds": self.timeout,
            "breaker": self.breaker.snapshot(),
            "bulkhead": self.bulkhead.snapshot(),
        }


@dataclass
class DownstreamPolicy:
    failure_threshold: int = 5
    reset_timeout: float = 5.0
    """Seconds a breaker stays open before it lets one trial call through."""
    max_concurrent: int = 10
    timeout: float = 5.0
    """Seconds one call may take."""

    @classmethod
    def from_config(cls, config: Config, prefix: str, max_concurrent: int) -> DownstreamPolicy:
        """Read ``<prefix>_FAILURE_THRESHOLD``, ``<prefix>_RESET_TIMEOUT`` (a duration, 5s),
        ``<prefix>_MAX_CONCURRENT`` and ``<prefix>_TIMEOUT`` (a duration, 5s)."""
        return cls(
            failure_threshold=config(f"{prefix}_FAILURE_THRESHOLD", cast=int, default=5),
            reset_timeout=config(
                f"{prefix}_RESET_TIMEOUT", cast=parse_duration, default="5s"
            ).total_seconds(),
            max_concurrent=config(f"{prefix}_MAX_CONCURRENT", cast=int, default=max_concurrent),
            timeout=config(f"{prefix}_TIMEOUT", cast=parse_duration, default="5s").total_seconds(),
        )


@dataclass
class Downstreams:
    """One :class:`Downstream` per key (e.g. a webhook's host), created on first use with the
    same policy: one failing receiver opens only its own breaker and fills only its own
    bulkhead."""

    policy: DownstreamPolicy = field(default_factory=DownstreamPolicy)
    clock: Callable[[], float] = time.monotonic
    _by_key: dict[str, Downstream] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Downstream:
        downstream = self._by_key.get(key)
        if downstream is None:
            downstream = Downstream(
                name=key,
                breaker=CircuitBreaker(
                    key, self.policy.failure_threshold, self.policy.reset_timeout, self.clock
                ),
                bulkhead=Bulkhead(key, self.policy.max_concurrent),
                timeout=self.policy.timeout,
            )
            self._by_key[key] = downstream
        return downstream

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {key: downstream.snapshot() for key, downstream in self._by_key.items()}
