"""Calls caplab makes to systems it does not own (account webhooks, the bank), and the Cloud
Tasks that carry them: shared by the notifier and the ledger's payout saga.

- :func:`create_http_task` creates a named HTTP task; ALREADY_EXISTS means "already
  scheduled" and is reported, not raised — the task name is the deduplication key.
- :func:`post_json` POSTs behind the receiving host's breaker, bulkhead and timeout
  (:mod:`services.shared.resilience`) with the idempotency id in ``Webhook-Id`` (the Standard
  Webhooks header), so the receiver can deduplicate an at-least-once sender. It never
  retries: the queue's retry config does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from services.shared.resilience import Downstreams

if TYPE_CHECKING:
    from google.cloud import tasks_v2

IDEMPOTENCY_HEADER = "Webhook-Id"
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})


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


class DownstreamFailed(RuntimeError):
    """The receiver failed (5xx, or 408/425/429): worth another attempt, and a failure for
    its breaker. Other 4xx answers mean the receiver is up and refuses this call for good:
    they are returned, not raised."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"receiver answered {status}")


def downstream_key(url: str) -> str:
    """Breakers and bulkheads are per receiving host: one bad receiver isolates itself."""
    return urlsplit(url).netloc or url


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
