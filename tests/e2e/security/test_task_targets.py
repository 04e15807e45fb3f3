"""Where the notifier's delivery tasks are sent is its own configured URL, never the ``Host``
header of the push that caused them: a caller who could choose it would choose where the
queue sends every delivery (and, in the cloud, the OIDC token that comes with it)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from services.shared.events import TransferCommitted
from tests.fixtures.fanout import eventually, unique

SUBSCRIPTION = TOPOLOGY.subscription("notifier")
FORGED_HOST = "127.0.0.2:1"
"""A loopback address where nothing listens: a task sent there is never delivered."""


def push(url: str, event: TransferCommitted, host: str) -> httpx.Response:
    """POST ``event`` to the notifier's push endpoint as Pub/Sub would, with ``Host: host``."""
    envelope = {
        "message": {
            "data": base64.b64encode(event.to_json()).decode(),
            "attributes": event.attributes(),
            "messageId": unique("msg"),
        },
        "subscription": f"projects/caplab-local/subscriptions/{SUBSCRIPTION.name}",
    }
    return httpx.post(f"{url}{SUBSCRIPTION.path}", json=envelope, headers={"Host": host})


def test_a_forged_host_header_does_not_redirect_deliveries(
    fanout_service: Callable[[str], launcher.RunningService],
    sink: launcher.RunningService,
) -> None:
    """A push carrying a forged ``Host`` is scheduled to the notifier's own address, so the
    webhook still receives the event."""
    notifier = fanout_service("notifier")
    payer, payee, hook = unique("acct"), unique("acct"), unique("hook")
    registered = httpx.put(
        f"{notifier.url}/v1/accounts/{payee}/webhook", json={"url": f"{sink.url}/hooks/{hook}"}
    )
    assert registered.status_code == 200, registered.text
    event = TransferCommitted(
        event_id=uuid.uuid4().hex,
        transfer_id=uuid.uuid4().hex,
        from_account=payer,
        to_account=payee,
        amount_cents=42,
        committed_at=datetime.now(UTC),
        from_version=1,
        to_version=1,
    )

    assert push(notifier.url, event, FORGED_HOST).status_code == 204

    def delivered() -> dict | None:
        summary = httpx.get(f"{sink.url}/hooks/{hook}").json()
        return summary if summary["effects"] else None

    assert eventually(delivered, timeout=30)["event_ids"] == [event.event_id]
