"""The notifier service: ``transfer-events`` → Cloud Tasks → the accounts' webhooks.

- ``PUT|GET|DELETE /v1/accounts/{account}/webhook``: an account's webhook registration. The
  URL is checked by the outbound URL policy (:mod:`services.shared.urlguard`) when it is
  registered (422 naming ``body.url``) and again, against the address it then resolves to,
  when each delivery is sent; it is answered without its userinfo.
- ``POST /pubsub/transfer-events``: push endpoint of subscription ``notifier``; schedules one
  task per registered side (:func:`services.notifier.delivery.schedule`) and acks once they
  exist. A Cloud Tasks failure answers 503, so Pub/Sub redelivers.
- ``POST /tasks/webhook-delivery``: what the queue ``webhooks`` dispatches to. Answers 200
  when the receiver took the event (or refused it for good with a 4xx), 502 when it failed,
  503 + ``Retry-After`` when the breaker is open, 429 when the bulkhead is full: every
  non-2xx hands the retry to the queue's retry config. A URL the policy refuses at send time
  is answered 200 ``blocked: <reason>``: no retry can make it safe.
- ``GET /v1/downstreams``: every webhook endpoint's (``scheme://host:port``) breaker state
  and counters and bulkhead use.

Settings: ``CAPLAB_NOTIFIER_URL`` is the service's own base URL for task targets (the Cloud
Run URL in the cloud, where it must be set; locally it defaults to ``http://127.0.0.1:$PORT``).
The target is never taken from the request: a forged ``Host`` header would otherwise choose
where the queue sends every delivery and its OIDC token;
``CAPLAB_TASKS_SERVICE_ACCOUNT`` / ``CAPLAB_TASKS_AUDIENCE`` set the tasks' OIDC token and
``CAPLAB_TASKS_INVOKER_AUDIENCE`` / ``..._SERVICE_ACCOUNT`` make the delivery endpoint verify
it; ``CAPLAB_WEBHOOK_FAILURE_THRESHOLD``, ``_RESET_TIMEOUT``, ``_MAX_CONCURRENT`` and
``_TIMEOUT`` set the breaker, bulkhead and timeout of each webhook host;
``CAPLAB_OUTBOUND_ALLOW_LOOPBACK`` and ``CAPLAB_OUTBOUND_ALLOWED_PORTS`` relax the URL policy
(see :class:`~services.shared.urlguard.UrlPolicy`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import httpx
from fastapi import FastAPI, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, ConfigDict

from caplab.core.clients import ClientFactory
from caplab.core.durations import parse_duration
from caplab.core.environment import GcpSettings, config_from
from caplab.core.topology import TOPOLOGY
from services.notifier import delivery
from services.notifier.webhooks import WebhookStore
from services.shared.app import create_app as create_service_app
from services.shared.deadline import run_with_deadline
from services.shared.events import TransferCommitted
from services.shared.fields import ACCOUNT_ID_PATTERN
from services.shared.oidc import OidcVerifier
from services.shared.outbound import OUTBOUND_ERRORS, TaskAuth, own_url, verified_task
from services.shared.problems import Problem, invalid_field
from services.shared.pubsub_push import DeadLetters, PushMessage, consume
from services.shared.resilience import (
    BulkheadFullError,
    CircuitOpenError,
    DownstreamPolicy,
    Downstreams,
)
from services.shared.transactions import TransactionRunner, TransactionSettings
from services.shared.urlguard import UnsafeUrl, UrlPolicy, guarded_client, redact

log = logging.getLogger(__name__)
AccountPath = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN)]
SUBSCRIPTION = TOPOLOGY.subscription("notifier")
QUEUE = TOPOLOGY.queue("webhooks")
MAX_URL_LENGTH = 2048
"""The ``Webhooks.Url`` column's ``STRING(2048)``, checked on the normalized URL."""


@dataclass(frozen=True)
class NotifierSettings:
    gcp: GcpSettings
    push_auth: OidcVerifier
    task_invoker_auth: OidcVerifier
    task_auth: TaskAuth
    self_url: str
    """Base URL the delivery tasks target (never derived from a request)."""
    webhook_policy: DownstreamPolicy
    url_policy: UrlPolicy
    transactions: TransactionSettings
    deadline: timedelta
    """Bound on each Spanner or Cloud Tasks call a request makes (past it: 503)."""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> NotifierSettings:
        config = config_from(environ)
        return cls(
            gcp=GcpSettings.from_config(config),
            push_auth=OidcVerifier.from_config(config, "CAPLAB_PUSH"),
            task_invoker_auth=OidcVerifier.from_config(config, "CAPLAB_TASKS_INVOKER"),
            task_auth=TaskAuth(
                service_account=config("CAPLAB_TASKS_SERVICE_ACCOUNT", default=None),
                audience=config("CAPLAB_TASKS_AUDIENCE", default=None),
            ),
            self_url=own_url(config, "CAPLAB_NOTIFIER_URL", "notifier"),
            webhook_policy=DownstreamPolicy.from_config(config, "CAPLAB_WEBHOOK", 10),
            url_policy=UrlPolicy.from_config(config),
            transactions=TransactionSettings.from_config(config),
            deadline=config("CAPLAB_NOTIFIER_DEADLINE", cast=parse_duration, default="5s"),
        )


class WebhookRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or NotifierSettings.from_environ()
    clients = ClientFactory(settings.gcp)
    deadline = settings.deadline.total_seconds()
    dead_letters = DeadLetters(clients.publisher, settings.gcp, deadline)
    downstreams = Downstreams(settings.webhook_policy)
    queue_path = settings.gcp.queue_path(QUEUE.name)
    store = WebhookStore(
        TransactionRunner(clients.spanner_database, settings.deadline, settings.transactions)
    )
    http: dict[str, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The per-host timeout is the bulkhead's; httpx's own is only a backstop.
        async with guarded_client(settings.url_policy) as client:
            http["client"] = client
            yield

    app = create_service_app(
        "caplab notifier",
        project=settings.gcp.project,
        readiness=lambda: store.lookup([]),
        lifespan=lifespan,
    )

    @app.put("/v1/accounts/{account}/webhook")
    async def register(account: AccountPath, registration: WebhookRegistration) -> dict[str, str]:
        url = str(registration.url)
        if len(url) > MAX_URL_LENGTH:
            raise invalid_field("body.url", f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            await settings.url_policy.check(url)
        except UnsafeUrl as error:
            raise invalid_field("body.url", f"this URL may not be called: {error}") from error
        await run_with_deadline(deadline, store.register, account, url)
        return {"account": account, "url": redact(url)}

    @app.get("/v1/accounts/{account}/webhook")
    async def registered(account: AccountPath) -> dict[str, str]:
        found = await run_with_deadline(deadline, store.lookup, [account])
        if account not in found:
            raise Problem(404, "not-found", f"account {account!r} has no webhook")
        return {"account": account, "url": redact(found[account])}

    @app.delete("/v1/accounts/{account}/webhook", status_code=204)
    async def unregister(account: AccountPath) -> None:
        await run_with_deadline(deadline, store.unregister, account)

    @app.post(SUBSCRIPTION.path, status_code=204)
    async def on_transfer_event(request: Request) -> Response:
        target = settings.self_url.rstrip("/") + delivery.DELIVERY_PATH

        async def schedule(event: TransferCommitted, message: PushMessage) -> None:
            accounts = (event.from_account, event.to_account)
            found = await run_with_deadline(deadline, store.lookup, accounts)
            for item in delivery.deliveries(event, found):
                await run_with_deadline(
                    deadline,
                    delivery.schedule,
                    clients.tasks,
                    queue_path,
                    target,
                    item,
                    settings.task_auth,
                )

        return await consume(request, SUBSCRIPTION, settings.push_auth, dead_letters, schedule)

    @app.post(delivery.DELIVERY_PATH)
    async def deliver(request: Request) -> Response:
        attempt = await verified_task(request, settings.task_invoker_auth)
        try:
            item = delivery.Delivery.from_json(await request.body())
        except (ValueError, KeyError, TypeError) as error:
            # Retrying a malformed task cannot help: 400 is still retried by the queue, but
            # it is logged loudly and bounded by max_attempts.
            raise Problem(400, "invalid-task", str(error), field="body") from error
        try:
            status = await delivery.deliver(http["client"], downstreams, item)
        except UnsafeUrl as error:
            log.warning("delivery %s blocked: %s", item.event_id, error)
            return _answer(200, item, f"blocked: {error.reason}")
        except CircuitOpenError as error:
            retry_after = str(max(1, round(error.retry_after)))
            return _answer(503, item, "circuit-open", headers={"Retry-After": retry_after})
        except BulkheadFullError:
            return _answer(429, item, "bulkhead-full")
        except OUTBOUND_ERRORS as error:
            log.warning(
                "delivery %s attempt %d failed: %r", item.event_id, attempt.retry_count + 1, error
            )
            return _answer(502, item, f"webhook-failed: {error!r}")
        return _answer(200, item, "delivered" if status < 300 else f"refused-{status}")

    @app.get("/v1/downstreams")
    async def downstream_states() -> dict[str, dict[str, object]]:
        return downstreams.snapshot()

    return app


def _answer(
    status: int, item: delivery.Delivery, outcome: str, headers: dict[str, str] | None = None
) -> Response:
    """The task's answer: 200 with the outcome, or a problem (Cloud Tasks retries non-2xx)."""
    body = {"event_id": item.event_id, "account": item.account, "outcome": outcome}
    if status < 400:
        return JSONResponse(body, status_code=status, headers=headers)
    kind = outcome.split(":", 1)[0]
    problem = Problem(
        status, kind, f"webhook delivery not done: {outcome}", headers=headers, **body
    )
    return problem.response()
