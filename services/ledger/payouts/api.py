"""The payout saga's HTTP side, mounted on the ledger service.

- ``POST /v1/payouts`` ``{"account", "amount_cents"}`` with an ``Idempotency-Key``: the hold
  (:meth:`~services.ledger.payouts.saga.PayoutStore.hold`), then the Cloud Tasks task
  ``payout-<id>`` on queue ``payouts``, targeting ``POST /tasks/payouts/{id}`` on this ledger
  (``CAPLAB_LEDGER_URL``). Answers 201 (created) or 200 (a replay, ``Idempotent-Replayed``)
  with the payout. Where the money goes is the ledger's configuration (``CAPLAB_BANK_URL``),
  never the caller's: the body accepts no other field.
- ``POST /tasks/payouts/{id}`` (Cloud Tasks, OIDC-verified when configured): one step of the
  saga (:meth:`Payouts.advance`). 200 once the payout has ended; 503 (problem+json) while it is
  open, so the queue calls again with its backoff. Nothing in the request but the payout id
  is used: ``X-CloudTasks-TaskRetryCount`` (any client can send it) decides nothing, the
  attempts are counted in Spanner, and a replayed delivery is one more idempotent step.
- ``GET /v1/payouts/{id}``: the state, the attempts and every step.
- ``GET /internal/bank``: the bank's breaker and bulkhead.

**No payout is stranded**: the ``held`` row is committed intent, and a sweeper in each ledger
instance (every ``CAPLAB_PAYOUTS_SWEEP_INTERVAL``) re-enqueues each open payout untouched for
``CAPLAB_PAYOUTS_STALE_AFTER``, as task ``payout-<id>-<step>``. A sweeper and not an outbox
of tasks, because it is the one mechanism that covers every way a task goes missing: never
created (a crash or a Cloud Tasks outage right after the hold), dropped after the queue's last
attempt (Spanner or the bank down for longer than the queue retries), or deleted by hand. Two
instances sweeping the same payout create one task: the step number names it, and the
``requeued`` step is recorded in a transaction that re-checks the payout is still stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, ParamSpec, TypeVar

import httpx
from fastapi import FastAPI, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from caplab.core.clients import ClientFactory
from caplab.core.timestamps import rfc3339
from caplab.core.topology import TOPOLOGY
from services.ledger.payouts.bank import Bank, Outcome
from services.ledger.payouts.saga import (
    Payout,
    PayoutState,
    PayoutStore,
    payout_not_found,
)
from services.ledger.payouts.settings import PayoutSettings
from services.shared import idempotency
from services.shared.deadline import run_with_deadline
from services.shared.fields import HEX_ID_PATTERN, AccountId, PositiveCents
from services.shared.identity import CallerDep
from services.shared.outbound import create_http_task
from services.shared.problems import Problem, problem_responses, unauthenticated
from services.shared.resilience import Downstreams
from services.shared.transactions import TransactionRunner

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
QUEUE = TOPOLOGY.queue("payouts")
TASK_PATH = "/tasks/payouts/{payout_id}"
PayoutIdPath = Annotated[str, Path(pattern=HEX_ID_PATTERN)]
SWEEP_BATCH = 100


class PayoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: AccountId
    amount_cents: PositiveCents


class PayoutStepOut(BaseModel):
    step: int
    event: str = Field(description="what happened: held, bank_call, bank_unknown, ...")
    state: PayoutState = Field(description="the payout's state after this step")
    detail: str
    at: str


class PayoutOut(BaseModel):
    payout_id: str
    account: str
    amount_cents: int
    state: PayoutState
    bank_attempts: int
    last_attempt_at: str | None
    created_at: str
    updated_at: str
    history: list[PayoutStepOut]


class PayoutStep(BaseModel):
    payout_id: str
    state: PayoutState


def payout_out(payout: Payout) -> PayoutOut:
    return PayoutOut(
        payout_id=payout.payout_id,
        account=payout.account,
        amount_cents=payout.amount_cents,
        state=payout.state,
        bank_attempts=payout.attempts,
        last_attempt_at=rfc3339(payout.last_attempt_at) if payout.last_attempt_at else None,
        created_at=rfc3339(payout.created_at),
        updated_at=rfc3339(payout.updated_at),
        history=[
            PayoutStepOut(
                step=s.step, event=s.event, state=s.state, detail=s.detail, at=rfc3339(s.at)
            )
            for s in payout.history
        ],
    )


class Payouts:
    """The saga's driver: the store, the bank, the task queue and the sweeper. The HTTP client
    (and so the bank) exists between :meth:`running`'s entry and exit (the app's lifespan)."""

    def __init__(
        self,
        settings: PayoutSettings,
        clients: ClientFactory,
        runner: TransactionRunner,
    ) -> None:
        self.settings = settings
        self.store = PayoutStore(runner)
        self.deadline = runner.timeout
        self.in_flight = idempotency.InFlightKeys()
        self._clients = clients
        self._queue_path = clients.settings.queue_path(QUEUE.name)
        self._downstreams = Downstreams(settings.bank_policy)
        self._bank: Bank | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The bank's HTTP client and the sweeper, for the app's lifetime."""
        if self.settings.bank_url is None:
            yield
            return
        # The bank's timeout is the downstream's; httpx's own is only a backstop.
        async with httpx.AsyncClient(timeout=60.0, follow_redirects=False) as http:
            key = httpx.URL(self.settings.bank_url).netloc.decode()
            self._bank = Bank(self.settings.bank_url, http, self._downstreams[key])
            sweeper = asyncio.create_task(self._sweep_forever(), name="payout-sweeper")
            try:
                yield
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                self._bank = None

    @property
    def bank(self) -> Bank:
        if self._bank is None:
            raise RuntimeError("the bank exists only while the app runs (its lifespan)")
        return self._bank

    async def _db(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A blocking Spanner or Cloud Tasks call, bounded by the ledger's deadline."""
        return await run_with_deadline(self.deadline, function, *args, **kwargs)

    async def create(self, key: str, payout: PayoutIn) -> tuple[Payout, bool]:
        """Hold, then schedule the first bank call; the payout and whether it was created."""
        digest = idempotency.request_hash(payout.model_dump())
        with self.in_flight.claim(key):
            payout_id, created = await self._db(
                self.store.hold, key, digest, payout.account, payout.amount_cents
            )
            current = await self.read(payout_id)
            if not current.state.final:
                await self._schedule_first(payout_id)
        return await self.read(payout_id), created

    async def read(self, payout_id: str) -> Payout:
        payout = await self._db(self.store.read, payout_id)
        if payout is None:
            raise payout_not_found(payout_id)
        return payout

    async def _schedule_first(self, payout_id: str) -> None:
        """Create task ``payout-<id>`` (again on a replay: the name deduplicates it). A
        failure is recorded, not raised: the hold is committed and the sweeper will
        re-enqueue the payout."""
        try:
            await self._create_task(payout_id, f"payout-{payout_id}")
        except Exception as error:  # any failure: the sweeper is the fallback
            log.warning("payout %s: task not created: %r", payout_id, error)
            detail = (
                f"task not created ({type(error).__name__}); the sweeper re-enqueues the "
                f"payout once it is untouched for {self.settings.stale_after.total_seconds():.0f}s"
            )
            with contextlib.suppress(Exception):
                await self._db(self.store.record, payout_id, "task_not_created", detail)

    async def _create_task(self, payout_id: str, task_id: str) -> None:
        target = self.settings.self_url + TASK_PATH.format(payout_id=payout_id)
        await self._db(
            create_http_task,
            self._clients.tasks,
            self._queue_path,
            task_id,
            target,
            b"{}",
            self.settings.task_auth,
        )

    async def advance(self, payout_id: str) -> PayoutState:
        """One delivery of the payout's task: ask the bank about an earlier attempt if there
        was one, pay if the bank does not have it, and settle or compensate on a definite
        answer. At most one payment request per delivery. The state after it."""
        payout = await self.read(payout_id)
        if payout.state.final:
            return payout.state
        if payout.attempts > 0:
            state = await self._reconcile(payout)
            if state is not PayoutState.HELD:
                return state
        return await self._pay(payout)

    async def _reconcile(self, payout: Payout) -> PayoutState:
        """An earlier attempt may have reached the bank: ask it before anything else."""
        store, payout_id = self.store, payout.payout_id
        answer = await self.bank.status(payout_id)
        if answer.outcome is Outcome.PAID:
            return await self._db(store.settle, payout_id, answer.detail)
        if answer.outcome is Outcome.REFUSED:
            return await self._db(store.compensate, payout_id, answer.detail)
        if answer.outcome is not Outcome.NOT_FOUND:
            return await self._db(
                store.record, payout_id, "status_unknown", answer.detail, PayoutState.RECONCILING
            )
        attempts, limit = payout.attempts, self.settings.bank_max_attempts
        if attempts < limit:
            detail = f"{answer.detail} (after attempt {attempts} of {limit}): paying again"
            return await self._db(
                store.record, payout_id, "status_not_found", detail, PayoutState.HELD
            )
        assert payout.last_attempt_at is not None  # attempts > 0
        waited = payout.read_at - payout.last_attempt_at
        window = self.settings.bank_arrival_window
        if waited < window:
            detail = (
                f"{answer.detail}; attempts spent, but the last was sent "
                f"{waited.total_seconds():.1f}s ago: waiting {window.total_seconds():.0f}s "
                f"for a late arrival before compensating"
            )
            return await self._db(
                store.record, payout_id, "status_not_found", detail, PayoutState.RECONCILING
            )
        detail = f"{answer.detail} after {attempts} attempts, the last {waited} ago"
        return await self._db(store.compensate, payout_id, detail, attempts_seen=attempts)

    async def _pay(self, payout: Payout) -> PayoutState:
        store, payout_id = self.store, payout.payout_id
        attempt = await self._db(store.begin_attempt, payout_id, self.settings.bank_max_attempts)
        if attempt is None:  # another delivery got there first
            return (await self.read(payout_id)).state
        answer = await self.bank.pay(payout_id, payout.account, payout.amount_cents)
        detail = f"attempt {attempt}: {answer.detail}"
        if answer.outcome is Outcome.PAID:
            return await self._db(store.settle, payout_id, detail)
        if answer.outcome is Outcome.REFUSED:
            return await self._db(store.compensate, payout_id, detail)
        if answer.outcome is Outcome.NOT_SENT:
            return await self._db(
                store.record, payout_id, "bank_not_sent", detail, PayoutState.HELD
            )
        return await self._db(
            store.record, payout_id, "bank_unknown", detail, PayoutState.RECONCILING
        )

    async def sweep(self) -> int:
        """Re-enqueue every open payout untouched for ``stale_after``; how many."""
        stale_after = self.settings.stale_after
        requeued = 0
        for payout_id in await self._db(self.store.stale, stale_after, SWEEP_BATCH):
            try:
                step = await self._db(self.store.requeue, payout_id, stale_after)
                if step is not None:
                    await self._create_task(payout_id, f"payout-{payout_id}-{step}")
                    requeued += 1
            except Exception:  # the payout stays stale: a later sweep tries again
                log.exception("payout %s: not re-enqueued", payout_id)
        return requeued

    async def _sweep_forever(self) -> None:
        interval = self.settings.sweep_interval.total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                requeued = await self.sweep()
            except Exception:  # a failed sweep is retried at the next interval
                log.exception("payout sweep failed")
                continue
            if requeued:
                log.info("payout sweep", extra={"fields": {"requeued": requeued}})


def add_payout_routes(
    app: FastAPI, clients: ClientFactory, runner: TransactionRunner, settings: PayoutSettings
) -> Payouts:
    """Mount the payout saga's endpoints on ``app`` (the ledger) when a bank is configured;
    the caller enters the returned :meth:`Payouts.running` in the app's lifespan. Without a
    bank there are no payout endpoints at all (404): nothing that moves money is exposed
    half-configured."""
    payouts = Payouts(settings, clients, runner)
    if settings.bank_url is None:
        log.warning("payouts are off: no bank is configured (CAPLAB_BANK_URL)")
        return payouts

    @app.post(
        "/v1/payouts",
        status_code=201,
        response_model=PayoutOut,
        responses={
            200: {"description": "a replay of the same Idempotency-Key and body",
                  "model": PayoutOut},
            **problem_responses(400, 404, 409, 422, 503),
        },
        tags=["payouts"],
    )  # fmt: skip
    async def create_payout(
        payout: PayoutIn,
        response: Response,
        caller: CallerDep,
        idempotency_key: idempotency.KeyHeader = None,
    ) -> PayoutOut:
        key = idempotency.required(idempotency_key, "POST /v1/payouts")
        current, created = await payouts.create(key, payout)
        log.info(
            "payout %s",
            "held" if created else "replayed",
            extra={"fields": {"caller": caller.identity, "payout_id": current.payout_id}},
        )
        if not created:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        return payout_out(current)

    @app.get(
        "/v1/payouts/{payout_id}",
        response_model=PayoutOut,
        responses=problem_responses(404, 422, 503),
        tags=["payouts"],
    )
    async def read_payout(payout_id: PayoutIdPath) -> PayoutOut:
        return payout_out(await payouts.read(payout_id))

    @app.post(
        TASK_PATH,
        response_model=PayoutStep,
        responses=problem_responses(401, 404, 503),
        tags=["internal"],
        summary="Cloud Tasks target: one step of the payout saga",
    )
    async def pay(payout_id: PayoutIdPath, request: Request) -> PayoutStep:
        if not await settings.task_invoker_auth.verify_async(request.headers.get("Authorization")):
            raise unauthenticated()
        state = await payouts.advance(payout_id)
        if not state.final:
            raise Problem(
                503,
                "payout-open",
                f"payout {payout_id} is {state.value}: the queue will call again",
                headers={"Retry-After": "1"},
                state=state.value,
            )
        return PayoutStep(payout_id=payout_id, state=state)

    @app.get("/internal/bank", tags=["internal"], summary="The bank's breaker and bulkhead")
    async def bank() -> dict[str, object]:
        return payouts.bank.snapshot()

    return payouts
