"""Turning an event into webhook deliveries: the Cloud Tasks task, and the call it makes.

**Enqueue** (:func:`schedule`): one task per notified account side, named
``<event id>-<side>`` on queue ``webhooks``. A redelivered event creates a task with the same
name, which Cloud Tasks refuses with ALREADY_EXISTS — the delivery is already scheduled (or
done), so that is a success: at-least-once Pub/Sub becomes one scheduled delivery per side.
The task targets the notifier's own delivery endpoint, with an OIDC token of the configured
service account in the cloud.

**Deliver** (:func:`deliver`): one HTTP POST to the account's webhook, behind that host's
circuit breaker, bulkhead and timeout (:mod:`services.shared.resilience`). The event id
travels in ``Webhook-Id`` so the receiver can deduplicate (Cloud Tasks too is at least once).
No retry loop here: a failed delivery answers non-2xx and the queue's retry config (backoff,
``max_attempts``) decides when to try again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import httpx

from services.shared.events import TransferCommitted
from services.shared.resilience import Downstreams

if TYPE_CHECKING:
    from google.cloud import tasks_v2

EVENT_ID_HEADER = "Webhook-Id"
DELIVERY_PATH = "/tasks/webhook-delivery"
Side = Literal["debit", "credit"]


@dataclass(frozen=True)
class TaskAuth:
    """OIDC token the queue attaches to each dispatch (cloud); ``None`` sends none."""

    service_account: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class Delivery:
    """The body of a webhook-delivery task."""

    event_id: str
    account: str
    side: Side
    url: str
    event: dict[str, object]

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "event_id": self.event_id,
                "account": self.account,
                "side": self.side,
                "url": self.url,
                "event": self.event,
            }
        ).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Delivery:
        data = json.loads(body)
        return cls(
            event_id=str(data["event_id"]),
            account=str(data["account"]),
            side=data["side"],
            url=str(data["url"]),
            event=dict(data["event"]),
        )


def deliveries(event: TransferCommitted, webhooks: dict[str, str]) -> list[Delivery]:
    """One delivery per side of ``event`` whose account registered a webhook."""
    payload = json.loads(event.to_json())
    sides: list[tuple[Side, str]] = [("debit", event.from_account), ("credit", event.to_account)]
    return [
        Delivery(event.event_id, account, side, webhooks[account], payload)
        for side, account in sides
        if account in webhooks
    ]


def task_id(delivery: Delivery) -> str:
    return f"{delivery.event_id}-{delivery.side}"


def schedule(
    client: tasks_v2.CloudTasksClient,
    queue_path: str,
    target_url: str,
    delivery: Delivery,
    auth: TaskAuth,
) -> bool:
    """Create the delivery's task; ``False`` when a task of that name already exists."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import tasks_v2

    request = tasks_v2.HttpRequest(
        http_method=tasks_v2.HttpMethod.POST,
        url=target_url,
        headers={"Content-Type": "application/json"},
        body=delivery.to_json(),
    )
    if auth.service_account:
        request.oidc_token = tasks_v2.OidcToken(
            service_account_email=auth.service_account, audience=auth.audience or target_url
        )
    task = tasks_v2.Task(name=f"{queue_path}/tasks/{task_id(delivery)}", http_request=request)
    try:
        client.create_task(parent=queue_path, task=task)
    except AlreadyExists:
        return False
    return True


_RETRYABLE_CLIENT_ERRORS = frozenset({408, 425, 429})


class WebhookRejected(RuntimeError):
    """The receiver failed (5xx, or 408/425/429): worth another attempt, and a failure for
    its breaker. Other 4xx answers mean the receiver is up and refuses this event for good:
    they are returned, not raised."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"webhook answered {status}")


def downstream_key(url: str) -> str:
    """Breakers and bulkheads are per receiving host: one bad receiver isolates itself."""
    parts = urlsplit(url)
    return parts.netloc or url


async def deliver(http: httpx.AsyncClient, downstreams: Downstreams, delivery: Delivery) -> int:
    """POST the event to the webhook behind its host's breaker, bulkhead and timeout; the
    receiver's status (2xx, or a 4xx that retrying cannot change). Raises
    :class:`WebhookRejected`, ``httpx.HTTPError``, ``TimeoutError`` or a
    :class:`~services.shared.resilience.ResilienceError`."""

    async def post() -> int:
        response = await http.post(
            delivery.url,
            content=json.dumps(delivery.event),
            headers={"Content-Type": "application/json", EVENT_ID_HEADER: delivery.event_id},
        )
        if response.status_code >= 500 or response.status_code in _RETRYABLE_CLIENT_ERRORS:
            raise WebhookRejected(response.status_code)
        return response.status_code

    return await downstreams[downstream_key(delivery.url)].call(post)
