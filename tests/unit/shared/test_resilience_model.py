"""The circuit breaker against a reference model, on a fake clock (Hypothesis stateful test);
the bulkhead, the composition order and the settings on their own.

The model is the breaker's documented behaviour written as a pure function of what happened:
CLOSED until ``failure_threshold`` consecutive failures; OPEN for ``reset_timeout`` seconds
(fail fast, counted as rejections); then HALF_OPEN, where one trial call goes through and its
outcome alone closes or reopens the breaker. Calls are started and finished in any order
(several in flight at once), the clock jumps by any amount, and every answer, every refusal's
``retry_after``, every state read and every counter must match the model.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from starlette.config import Config

from services.shared.resilience import (
    BreakerState,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    Downstream,
    DownstreamPolicy,
    Downstreams,
    ResilienceError,
)

OUTCOMES = ("success", "failure", "refused", "cancelled")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ModelBreaker:
    threshold: int
    reset: float
    opened_at: float | None = None  # None while CLOSED
    consecutive: int = 0
    trial_in_flight: bool = False
    successes: int = 0
    failures: int = 0
    rejections: int = 0
    opened: int = 0
    closed: int = 0

    def state(self, now: float) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if now - self.opened_at < self.reset:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def admit(self, now: float) -> tuple[bool, float | None]:
        """(is the trial, None) if admitted; (False, retry_after) if refused."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return False, None
        if state is BreakerState.HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True, None
        self.rejections += 1
        assert self.opened_at is not None
        return False, max(0.0, self.reset - (now - self.opened_at))

    def finish(self, trial: bool, outcome: str, now: float) -> None:
        if trial:
            self.trial_in_flight = False
        if outcome == "success":
            self.successes += 1
            self.consecutive = 0
            if trial:
                self.opened_at, self.closed = None, self.closed + 1
        elif outcome == "failure":
            self.failures += 1
            self.consecutive += 1
            closed = self.opened_at is None
            if trial or (closed and self.consecutive >= self.threshold):
                self.opened_at, self.opened = now, self.opened + 1


@dataclass
class InFlight:
    task: asyncio.Task[str]
    release: asyncio.Future[str]
    trial: bool


class BreakerMachine(RuleBasedStateMachine):
    calls = Bundle("calls")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()

    @initialize(threshold=st.integers(1, 4), reset=st.sampled_from([0.5, 1.0, 5.0]))
    def make(self, threshold: int, reset: float) -> None:
        self.breaker = CircuitBreaker("model", threshold, reset, clock=self.clock)
        self.model = ModelBreaker(threshold, reset)

    def teardown(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.settle()
        self.loop.close()

    def settle(self) -> None:
        """Let every runnable task advance until it waits (no clock involved)."""
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))

    @rule(target=calls)
    def start_call(self) -> InFlight | None:
        """A call that stays in flight until a later rule finishes it (or is refused now)."""
        release: asyncio.Future[str] = self.loop.create_future()

        async def operation() -> str:
            return await release

        task = self.loop.create_task(self.breaker.call(operation))
        self.settle()
        trial, retry_after = self.model.admit(self.clock.now)
        if retry_after is not None:
            assert task.done()
            error = task.exception()
            assert isinstance(error, CircuitOpenError)
            assert error.retry_after == pytest.approx(retry_after)
            return None
        assert not task.done()
        return InFlight(task, release, trial)

    @rule(call=consumes(calls), outcome=st.sampled_from(OUTCOMES))
    def finish_call(self, call: InFlight | None, outcome: str) -> None:
        if call is None:
            return
        if outcome == "success":
            call.release.set_result("ok")
        elif outcome == "failure":
            call.release.set_exception(ConnectionError("down"))
        elif outcome == "refused":
            call.release.set_exception(BulkheadFullError("model", 1))
        else:
            call.task.cancel()
        self.settle()
        assert call.task.done()
        self.model.finish(call.trial, outcome, self.clock.now)
        expected = {"success": None, "failure": ConnectionError, "refused": ResilienceError}
        if outcome == "cancelled":
            assert call.task.cancelled()
        elif expected[outcome] is None:
            assert call.task.result() == "ok"
        else:
            assert isinstance(call.task.exception(), expected[outcome])  # type: ignore[arg-type]

    @rule(outcome=st.sampled_from(OUTCOMES))
    def quick_call(self, outcome: str) -> None:
        """A call that ends as soon as it starts."""
        call = self.start_call()
        self.finish_call(call, outcome)

    @rule()
    def fail_until_open(self) -> None:
        """As many quick failures as the threshold: opens a closed breaker."""
        for _ in range(self.model.threshold):
            self.quick_call("failure")

    @rule(fraction=st.sampled_from([0.0, 0.5, 0.999, 1.0, 1.5]) | st.floats(0, 3))
    def advance(self, fraction: float) -> None:
        """Move the clock by a fraction of the reset timeout (exactly 1: the boundary), and
        look at the state (reading it must change nothing the model does not)."""
        self.clock.now += fraction * self.model.reset
        self.read_state()

    @rule()
    def read_state(self) -> None:
        assert self.breaker.state is self.model.state(self.clock.now)

    @invariant()
    def counters_match(self) -> None:
        if not hasattr(self, "model"):
            return
        counters, model = self.breaker.counters, self.model
        assert (counters.successes, counters.failures, counters.rejections) == (
            model.successes, model.failures, model.rejections)  # fmt: skip
        assert (counters.opened, counters.closed) == (model.opened, model.closed)


TestBreakerAgainstModel = BreakerMachine.TestCase


async def test_an_old_call_ending_during_the_trial_neither_closes_nor_frees_the_trial() -> None:
    """A call admitted while closed that succeeds during the half-open trial is counted, but
    the breaker stays half-open and a second caller is still refused until the trial ends."""
    clock = FakeClock()
    breaker = CircuitBreaker("bank", failure_threshold=1, reset_timeout=5, clock=clock)
    old_release: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    old = asyncio.create_task(breaker.call(lambda: old_release))
    await asyncio.sleep(0)
    with pytest.raises(ConnectionError):
        await breaker.call(_boom)
    clock.now += 5
    trial_release: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    trial = asyncio.create_task(breaker.call(lambda: trial_release))
    await asyncio.sleep(0)
    old_release.set_result("late")
    assert await old == "late"
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        await breaker.call(_ok)
    trial_release.set_result("ok")
    assert await trial == "ok"
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.counters.successes, breaker.counters.closed) == (2, 1)


async def _ok() -> str:
    return "ok"


async def _boom() -> str:
    raise ConnectionError("down")


async def test_breaker_refusals_and_settings_describe_themselves() -> None:
    """Defaults: 5 consecutive failures open the breaker for 5 s. Refusals name the
    downstream and when the next trial is due."""
    clock = FakeClock()
    breaker = CircuitBreaker("bank", clock=clock)
    assert breaker.snapshot() == {
        "state": "closed", "consecutive_failures": 0, "failure_threshold": 5,
        "reset_timeout_seconds": 5.0, "successes": 0, "failures": 0, "rejections": 0,
        "opened": 0, "closed": 0,
    }  # fmt: skip
    for _ in range(5):
        with pytest.raises(ConnectionError):
            await breaker.call(_boom)
    clock.now += 3.766
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.call(_ok)
    assert str(refused.value) == "circuit 'bank' is open; next trial in 1.23s"
    assert str(BulkheadFullError("bank", 3)) == "bulkhead 'bank' is full (3 calls in flight)"
    with pytest.raises(ValueError, match=r"^failure_threshold must be at least 1$"):
        CircuitBreaker("bank", failure_threshold=0)
    assert CircuitBreaker("bank", failure_threshold=1).failure_threshold == 1


async def test_every_recovery_is_followed_by_a_fresh_trial_when_it_opens_again() -> None:
    """Open, recover, open again: the second half-open period admits its own trial, and
    each transition is counted."""
    clock = FakeClock()
    breaker = CircuitBreaker("bank", failure_threshold=1, reset_timeout=1, clock=clock)
    for cycle in (1, 2):
        with pytest.raises(ConnectionError):
            await breaker.call(_boom)
        clock.now += 1
        assert await breaker.call(_ok) == "ok"
        assert breaker.state is BreakerState.CLOSED
        assert (breaker.counters.opened, breaker.counters.closed) == (cycle, cycle)


async def test_an_open_breaker_takes_no_bulkhead_slot() -> None:
    """The breaker is asked first: refused calls never reach the bulkhead (no slot, no
    bulkhead rejection), and a bulkhead refusal is not a downstream failure."""
    clock = FakeClock()
    downstream = Downstream(
        "hooks", CircuitBreaker("hooks", 1, 5, clock=clock), Bulkhead("hooks", 1), timeout=5
    )
    with pytest.raises(ConnectionError):
        await downstream.call(_boom)
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            await downstream.call(_ok)
    assert downstream.snapshot() == {
        "timeout_seconds": 5,
        "breaker": downstream.breaker.snapshot(),
        "bulkhead": {"limit": 1, "in_flight": 0, "peak": 1, "rejections": 0},
    }
    assert downstream.breaker.counters.rejections == 3


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_bulkhead_admits_exactly_its_limit(limit: int) -> None:
    """``limit`` calls in flight, the next refused at once; a slot frees when a call ends,
    whether it succeeded or failed."""
    bulkhead = Bulkhead("x", limit)
    release: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    held = [asyncio.create_task(bulkhead.call(lambda: release)) for _ in range(limit)]
    await asyncio.sleep(0)
    assert bulkhead.in_flight == limit
    with pytest.raises(BulkheadFullError):
        await bulkhead.call(_ok)
    with pytest.raises(BulkheadFullError) as refused:
        await bulkhead.call(_ok)
    assert str(refused.value) == f"bulkhead 'x' is full ({limit} calls in flight)"
    release.set_exception(ConnectionError("down"))
    results = await asyncio.gather(*held, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await bulkhead.call(_ok) == "ok"
    assert bulkhead.snapshot() == {"limit": limit, "in_flight": 0, "peak": limit,
                                   "rejections": 2}  # fmt: skip


def test_policy_reads_its_settings_with_duration_strings() -> None:
    config = Config(environ={"X_FAILURE_THRESHOLD": "7", "X_RESET_TIMEOUT": "1500ms",
                             "X_MAX_CONCURRENT": "3", "X_TIMEOUT": "2m"})  # fmt: skip
    assert DownstreamPolicy.from_config(config, "X", max_concurrent=10) == DownstreamPolicy(
        failure_threshold=7, reset_timeout=1.5, max_concurrent=3, timeout=120
    )
    defaults = DownstreamPolicy.from_config(Config(environ={}), "X", max_concurrent=4)
    assert defaults == DownstreamPolicy(5, 5.0, 4, 5.0)


async def test_downstreams_share_one_policy_and_keep_one_entry_per_key() -> None:
    clock = FakeClock()
    downstreams = Downstreams(DownstreamPolicy(2, 7.0, 3, 0.5), clock=clock)
    first = downstreams["a"]
    assert downstreams["a"] is first
    assert (first.name, first.breaker.name, first.bulkhead.name) == ("a", "a", "a")
    assert (first.breaker.failure_threshold, first.breaker.reset_timeout) == (2, 7.0)
    assert (first.bulkhead.limit, first.timeout) == (3, 0.5)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await first.call(_boom)
    clock.now += 6.9
    with pytest.raises(CircuitOpenError) as refused:
        await first.call(_ok)
    assert refused.value.retry_after == pytest.approx(0.1)
    assert set(downstreams.snapshot()) == {"a"}
