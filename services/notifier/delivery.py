"""Turning an event into webhook deliveries: the Cloud Tasks task, and the call it makes.

**Enqueue** (:func:`schedule`): one task per notified account side, named
``<event id>-<side>`` on queue ``webhooks``. A redelivered event creates a task with the same
name, which Cloud Tasks refuses with ALREADY_EXISTS — the delivery is already scheduled (or
done), so that is a success: at-least-once Pub/Sub becomes one scheduled delivery per side.
The task targets the notifier's own delivery endpoint, with an OIDC token of the configured
service account in the cloud.

**Deliver** (:func:`deliver`): one HTTP POST to the account's webhook, behind that host's
circuit breaker, bulkhead and timeout, with the event id in ``Webhook-Id`` so the receiver can
deduplicate (Cloud Tasks too is at least once); see :mod:`services.shared.outbound`. No retry
loop here: a failed delivery answers non-2xx and the queue's retry config (backoff,
``max_attempts``) decides when to try again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx

from services.shared.events import TransferCommitted
from services.shared.outbound import TaskAuth, create_http_task, post_json
from services.shared.resilience import Downstreams

if TYPE_CHECKING:
    from google.cloud import tasks_v2

DELIVERY_PATH = "/tasks/webhook-delivery"
Side = Literal["debit", "credit"]


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
    return create_http_task(
        client, queue_path, task_id(delivery), target_url, delivery.to_json(), auth
    )


async def deliver(http: httpx.AsyncClient, downstreams: Downstreams, delivery: Delivery) -> int:
    """POST the event to the account's webhook (see :func:`services.shared.outbound.post_json`)."""
    return await post_json(http, downstreams, delivery.url, delivery.event_id, delivery.event)
