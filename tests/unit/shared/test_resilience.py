"""Circuit breaker, bulkhead and timeout (services.shared.resilience), on a manual clock."""

from __future__ import annotations

import asyncio

import pytest

from services.shared.resilience import (
    BreakerState,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    DownstreamPolicy,
    Downstreams,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _ok() -> str:
    return "ok"


async def _boom() -> str:
    raise ConnectionError("down")


async def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(_boom)


async def test_breaker_opens_after_consecutive_failures_and_fails_fast() -> None:
    """Threshold consecutive failures open the breaker; then calls are rejected without
    running the operation, and the rejection is counted."""
    clock = ManualClock()
    breaker = CircuitBreaker("bank", failure_threshold=3, reset_timeout=10, clock=clock)
    await _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    await _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    ran = []

    async def tracked() -> str:
        ran.append(1)
        return "ok"

    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(tracked)
    assert ran == []
    assert refused.value.retry_after == pytest.approx(10)
    counters = breaker.counters
    assert (counters.failures, counters.rejections, counters.opened) == (3, 1, 1)


async def test_success_resets_the_consecutive_failure_count() -> None:
    """Failures separated by a success never reach the threshold."""
    breaker = CircuitBreaker("bank", failure_threshold=2, clock=ManualClock())
    await _fail(breaker, 1)
    assert await breaker.call(_ok) == "ok"
    await _fail(breaker, 1)
    assert breaker.state is BreakerState.CLOSED


async def test_half_open_trial_success_closes_the_breaker() -> None:
    """After the reset timeout one trial goes through; its success closes the breaker."""
    clock = ManualClock()
    breaker = CircuitBreaker("bank", failure_threshold=1, reset_timeout=5, clock=clock)
    await _fail(breaker, 1)
    clock.now = 5
    assert breaker.state is BreakerState.HALF_OPEN
    assert await breaker.call(_ok) == "ok"
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.counters.opened, breaker.counters.closed) == (1, 1)


async def test_half_open_trial_failure_reopens_for_another_timeout() -> None:
    """A failed trial opens the breaker again, timed from the trial's failure."""
    clock = ManualClock()
    breaker = CircuitBreaker("bank", failure_threshold=1, reset_timeout=5, clock=clock)
    await _fail(breaker, 1)
    clock.now = 6
    await _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    clock.now = 10
    assert breaker.state is BreakerState.OPEN
    clock.now = 11
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.counters.opened == 2


async def test_half_open_admits_a_single_trial_at_a_time() -> None:
    """While the trial is in flight, other calls fail fast."""
    clock = ManualClock()
    breaker = CircuitBreaker("bank", failure_threshold=1, reset_timeout=1, clock=clock)
    await _fail(breaker, 1)
    clock.now = 1
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "ok"

    trial = asyncio.create_task(breaker.call(slow))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await breaker.call(_ok)
    release.set()
    assert await trial == "ok"
    assert breaker.state is BreakerState.CLOSED


async def test_bulkhead_rejects_beyond_its_limit_without_tripping_the_breaker() -> None:
    """With the limit in flight, the next call is rejected at once; the rejection is not a
    downstream failure."""
    downstreams = Downstreams(DownstreamPolicy(failure_threshold=1, max_concurrent=2, timeout=5))
    hook = downstreams["hooks.example"]
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "ok"

    running = [asyncio.create_task(hook.call(slow)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await hook.call(_ok)
    release.set()
    assert await asyncio.gather(*running) == ["ok", "ok"]
    assert hook.breaker.state is BreakerState.CLOSED
    assert hook.bulkhead.snapshot() == {"limit": 2, "in_flight": 0, "peak": 2, "rejections": 1}


async def test_timeout_counts_as_a_failure() -> None:
    """A downstream that never answers raises TimeoutError and opens the breaker."""
    downstreams = Downstreams(DownstreamPolicy(failure_threshold=1, timeout=0.01))
    hook = downstreams["slow.example"]

    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    with pytest.raises(TimeoutError):
        await hook.call(hang)
    assert hook.breaker.state is BreakerState.OPEN


async def test_downstreams_are_isolated_per_key() -> None:
    """One failing receiver opens only its own breaker."""
    downstreams = Downstreams(DownstreamPolicy(failure_threshold=1))
    with pytest.raises(ConnectionError):
        await downstreams["bad.example"].call(_boom)
    assert await downstreams["good.example"].call(_ok) == "ok"
    states = {key: value["breaker"]["state"] for key, value in downstreams.snapshot().items()}  # type: ignore[index]
    assert states == {"bad.example": "open", "good.example": "closed"}
