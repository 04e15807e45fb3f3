"""The payout saga's HTTP side, mounted on the ledger service.

- ``POST /v1/payouts`` (``Idempotency-Key`` required): step 1, the hold
  (:meth:`~services.ledger.payouts.saga.PayoutStore.hold`), then step 2 is scheduled as Cloud Tasks
  task ``payout-<id>`` on queue ``payouts``, targeting ``POST /tasks/payouts/{id}`` here. The
  task is (re)created on every call, replays included, and its name makes that idempotent: if
  the process dies between the hold's commit and the task, the client's retry with the same
  key schedules it. Answers 201 (created) or 200 (replay), with the payout.
- ``POST /tasks/payouts/{id}``: calls the bank webhook behind its breaker, bulkhead and
  timeout with the payout id in ``Webhook-Id``; success settles. A failure on an attempt
  that is not the queue's last records a ``bank_failed`` step and answers 503 (the queue
  retries with its backoff); on the last attempt — ``X-CloudTasks-TaskRetryCount + 1`` equals
  the queue's ``max_attempts`` — it compensates and answers 200. A bank answering a
  non-retryable 4xx refuses the payout for good: compensated at once.
- ``GET /v1/payouts/{id}``: the state and its history.

Known limit of the saga: a bank that times out may still have paid. The last attempt then
compensates a payout the bank executed; production needs a reconciliation with the bank (a
status query by payout id), which this project does not model.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import FastAPI, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, Field

from caplab.core.clients import ClientFactory
from caplab.core.environment import config_from
from caplab.core.timestamps import rfc3339
from caplab.core.topology import TOPOLOGY
from services.ledger.payouts.saga import Payout, PayoutState, PayoutStore
from services.shared.oidc import OidcVerifier
from services.shared.outbound import OUTBOUND_ERRORS, TaskAuth, create_http_task, post_json
from services.shared.problems import Problem
from services.shared.resilience import DownstreamPolicy, Downstreams, ResilienceError
from services.shared.transactions import TransactionRunner

log = logging.getLogger(__name__)
QUEUE = TOPOLOGY.queue("payouts")
TASK_PATH = "/tasks/payouts/{payout_id}"
PAYOUT_ID = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@dataclass(frozen=True)
class PayoutSettings:
    self_url: str | None
    """The ledger's own base URL for task targets (Cloud Run URL); else the request's."""
    task_auth: TaskAuth
    task_invoker_auth: OidcVerifier
    bank_policy: DownstreamPolicy

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> PayoutSettings:
        config = config_from(environ)
        return cls(
            self_url=config("CAPLAB_LEDGER_URL", default=None),
            task_auth=TaskAuth(
                service_account=config("CAPLAB_TASKS_SERVICE_ACCOUNT", default=None),
                audience=config("CAPLAB_TASKS_AUDIENCE", default=None),
            ),
            task_invoker_auth=OidcVerifier.from_config(config, "CAPLAB_TASKS_INVOKER"),
            bank_policy=DownstreamPolicy.from_config(config, "CAPLAB_BANK", 5),
        )


class PayoutIn(BaseModel):
    account: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    amount_cents: int = Field(gt=0, le=2**63 - 1)
    bank_url: AnyHttpUrl


def _payout_json(payout: Payout) -> dict[str, object]:
    return {
        "payout_id": payout.payout_id,
        "account": payout.account,
        "amount_cents": payout.amount_cents,
        "bank_url": payout.bank_url,
        "state": payout.state.value,
        "history": [
            {"step": s.step, "state": s.state, "detail": s.detail, "at": rfc3339(s.at)}
            for s in payout.history
        ],
    }


def add_payout_routes(app: FastAPI, clients: ClientFactory, runner: TransactionRunner) -> None:
    """Mount the payout saga's endpoints on ``app`` (the ledger)."""
    settings = PayoutSettings.from_environ()
    store = PayoutStore(runner)
    banks = Downstreams(settings.bank_policy)
    queue_path = clients.settings.queue_path(QUEUE.name)
    http = httpx.AsyncClient(timeout=60.0)  # the per-bank timeout is the bulkhead's

    @app.post("/v1/payouts", status_code=201, tags=["payouts"])
    async def create_payout(
        payout: PayoutIn,
        request: Request,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", max_length=255)
        ] = None,
    ) -> Response:
        if not idempotency_key:
            raise Problem(
                400,
                "idempotency-key-missing",
                "POST /v1/payouts requires an Idempotency-Key header (e.g. a UUID)",
                field="header.Idempotency-Key",
            )
        bank_url = str(payout.bank_url)
        payout_id, created = await asyncio.to_thread(
            store.hold, idempotency_key, payout.account, payout.amount_cents, bank_url
        )
        base = (settings.self_url or str(request.base_url)).rstrip("/")
        target = base + TASK_PATH.format(payout_id=payout_id)
        await asyncio.to_thread(
            create_http_task,
            clients.tasks,
            queue_path,
            f"payout-{payout_id}",
            target,
            b"{}",
            settings.task_auth,
        )
        current = await asyncio.to_thread(store.read, payout_id)
        if current is None:  # committed above: only a deleted database gets here
            raise Problem(503, "payout-vanished", f"payout {payout_id!r} cannot be read back")
        return JSONResponse(_payout_json(current), status_code=201 if created else 200)

    @app.get("/v1/payouts/{payout_id}", tags=["payouts"])
    async def read_payout(payout_id: PAYOUT_ID) -> Response:
        payout = await asyncio.to_thread(store.read, payout_id)
        if payout is None:
            raise Problem(404, "payout-not-found", f"no payout {payout_id!r}")
        return JSONResponse(_payout_json(payout))

    @app.post(TASK_PATH, tags=["internal"], summary="Cloud Tasks target: pay through the bank")
    async def pay(
        payout_id: PAYOUT_ID,
        request: Request,
        retry_count: Annotated[int, Header(alias="X-CloudTasks-TaskRetryCount", ge=0)] = 0,
    ) -> Response:
        if not settings.task_invoker_auth.verify(request.headers.get("Authorization")):
            return Response(status_code=401)
        payout = await asyncio.to_thread(store.read, payout_id)
        if payout is None:
            raise Problem(404, "payout-not-found", f"no payout {payout_id!r}")
        if payout.state is not PayoutState.HELD:
            return JSONResponse({"payout_id": payout_id, "state": payout.state.value})
        attempt = retry_count + 1
        body = {"payout_id": payout_id, "account": payout.account, "amount": payout.amount_cents}
        try:
            status = await post_json(http, banks, payout.bank_url, payout_id, body)
        except (*OUTBOUND_ERRORS, ResilienceError) as error:
            detail = f"attempt {attempt}/{QUEUE.retry.max_attempts}: {error!r}"
            if attempt < QUEUE.retry.max_attempts:
                await asyncio.to_thread(store.record_failure, payout_id, detail)
                return JSONResponse({"payout_id": payout_id, "state": "held"}, status_code=503)
            state = await asyncio.to_thread(
                store.compensate, payout_id, f"attempts exhausted; last {detail}"
            )
            return JSONResponse({"payout_id": payout_id, "state": state.value})
        if status >= 300:
            state = await asyncio.to_thread(
                store.compensate, payout_id, f"bank refused the payout ({status})"
            )
        else:
            state = await asyncio.to_thread(
                store.settle, payout_id, f"bank accepted on attempt {attempt} ({status})"
            )
        return JSONResponse({"payout_id": payout_id, "state": state.value})
