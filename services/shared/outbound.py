"""Calls caplab makes to systems it does not own (account webhooks, the bank), and the Cloud
Tasks that carry them: shared by the notifier and the ledger's payout saga.

- :func:`own_url` is the base URL a service puts in the tasks it creates: configured, never
  taken from a request's ``Host`` header (which a caller chooses), required on Cloud Run.
- :func:`verified_task` is how a task handler reads the ``X-CloudTasks-*`` headers: only
  after the request's token is verified.
- :func:`create_http_task` creates a named HTTP task; ALREADY_EXISTS means "already
  scheduled" and is reported, not raised — the task name is the deduplication key.
- :func:`post_json` POSTs behind the receiving endpoint's breaker, bulkhead and timeout
  (:mod:`services.shared.resilience`) with the idempotency id in ``Webhook-Id`` (the Standard
  Webhooks header), so the receiver can deduplicate an at-least-once sender. It never
  retries: the queue's retry config does. For a URL a client chose, ``http`` is a
  :func:`~services.shared.urlguard.guarded_client`: a refused destination raises
  :class:`~services.shared.urlguard.UnsafeUrl` before anything is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from fastapi import Request

from caplab.core.catalogue import service
from caplab.core.errors import SettingError
from services.shared.oidc import OidcVerifier
from services.shared.problems import Problem, unauthenticated
from services.shared.resilience import Downstreams
from services.shared.urlguard import origin

if TYPE_CHECKING:
    from google.cloud import tasks_v2
    from starlette.config import Config

IDEMPOTENCY_HEADER = "Webhook-Id"
RETRY_COUNT_HEADER = "X-CloudTasks-TaskRetryCount"
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})


def base_url(text: str) -> str:
    """``text`` as an ``http(s)://host[:port][/path]`` base URL without a trailing slash;
    ``ValueError`` for anything else (a query, a fragment, another scheme)."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{text!r} is not an http(s) base URL")
    return text.rstrip("/")


def own_url(config: Config, setting: str, name: str) -> str:
    """The base URL of service ``name`` itself, where the tasks it creates are delivered:
    ``setting`` when set; otherwise, on Cloud Run (``K_SERVICE`` set), a
    :class:`~caplab.core.errors.SettingError` naming it (the service does not start); locally,
    the loopback address of this process's ``PORT`` (the catalogue's port by default)."""
    configured = config(setting, cast=base_url, default=None)
    if configured is not None:
        return configured
    if config("K_SERVICE", default=None) is not None:
        raise SettingError(
            f"{setting} is not set: on Cloud Run the {name} needs its own URL for the tasks "
            "it creates"
        )
    port = config("PORT", cast=int, default=service(name).port)
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class TaskAuth:
    """The OIDC token the queue attaches to each dispatch (in the cloud: a service account
    the target's Cloud Run service lets invoke it); ``None`` sends none."""

    service_account: str | None = None
    audience: str | None = None


def create_http_task(
    client: tasks_v2.CloudTasksClient,
    queue_path: str,
    task_id: str,
    url: str,
    body: bytes,
    auth: TaskAuth,
) -> bool:
    """POST ``body`` to ``url`` as task ``task_id``; ``False`` when that task already
    exists (or existed recently)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import tasks_v2

    request = tasks_v2.HttpRequest(
        http_method=tasks_v2.HttpMethod.POST,
        url=url,
        headers={"Content-Type": "application/json"},
        body=body,
    )
    if auth.service_account:
        request.oidc_token = tasks_v2.OidcToken(
            service_account_email=auth.service_account, audience=auth.audience or url
        )
    task = tasks_v2.Task(name=f"{queue_path}/tasks/{task_id}", http_request=request)
    try:
        client.create_task(parent=queue_path, task=task)
    except AlreadyExists:
        return False
    return True


@dataclass(frozen=True)
class TaskAttempt:
    """What Cloud Tasks says about the attempt it is making, read from a verified request."""

    retry_count: int
    """Attempts of this task before this one (``X-CloudTasks-TaskRetryCount``)."""


async def verified_task(request: Request, auth: OidcVerifier) -> TaskAttempt:
    """The attempt's ``X-CloudTasks-*`` headers, read only once the request's token is
    verified (anyone can send those headers; only Cloud Tasks holds the token); raises a 401
    problem otherwise, and a 400 naming the header when it is not a small integer."""
    if not await auth.verify_async(request.headers.get("Authorization")):
        raise unauthenticated()
    text = request.headers.get(RETRY_COUNT_HEADER, "0")
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise Problem(
            400,
            "invalid-task-header",
            f"{RETRY_COUNT_HEADER} must be a non-negative integer",
            field=f"header.{RETRY_COUNT_HEADER}",
        )
    return TaskAttempt(retry_count=int(text))


class DownstreamFailed(RuntimeError):
    """The receiver failed (5xx, or 408/425/429): worth another attempt, and a failure for
    its breaker. Other 4xx answers mean the receiver is up and refuses this call for good:
    they are returned, not raised."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"receiver answered {status}")


def downstream_key(url: str) -> str:
    """Breakers and bulkheads are per receiving endpoint, ``scheme://host:port``: one bad
    receiver isolates itself, and no key (shown by ``/v1/downstreams``) carries a URL's
    userinfo."""
    return origin(url)


async def post_json(
    http: httpx.AsyncClient,
    downstreams: Downstreams,
    url: str,
    idempotency_id: str,
    payload: object,
) -> int:
    """POST ``payload`` to ``url``; the receiver's status (2xx, or a 4xx retrying cannot
    change). Raises :class:`DownstreamFailed`, ``httpx.HTTPError``, ``TimeoutError`` or a
    :class:`~services.shared.resilience.ResilienceError`."""

    async def post() -> int:
        response = await http.post(
            url,
            content=json.dumps(payload),
            headers={"Content-Type": "application/json", IDEMPOTENCY_HEADER: idempotency_id},
        )
        if response.status_code >= 500 or response.status_code in _RETRYABLE_CLIENT_ERRORS:
            raise DownstreamFailed(response.status_code)
        return response.status_code

    return await downstreams[downstream_key(url)].call(post)


OUTBOUND_ERRORS: tuple[type[Exception], ...] = (DownstreamFailed, httpx.HTTPError, TimeoutError)
"""What a failed outbound call raises besides a local refusal (ResilienceError)."""
