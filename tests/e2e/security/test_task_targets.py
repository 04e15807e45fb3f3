"""Where the notifier's delivery tasks are sent is its own configured URL, never the ``Host``
header of the push that caused them: a caller who could choose it would choose where the
queue sends every delivery (and, in the cloud, the OIDC token that comes with it)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from tests.fixtures.fanout import eventually, push_envelope, transfer_event, unique

SUBSCRIPTION = TOPOLOGY.subscription("notifier")
FORGED_HOST = "127.0.0.2:1"
"""A loopback address where nothing listens: a task sent there is never delivered."""


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
    event = transfer_event(payer, payee, 42)
    envelope = push_envelope(event.to_json(), SUBSCRIPTION.name, **event.attributes())
    pushed = httpx.post(
        f"{notifier.url}{SUBSCRIPTION.path}", json=envelope, headers={"Host": FORGED_HOST}
    )
    assert pushed.status_code == 204, pushed.text

    def delivered() -> dict | None:
        summary = httpx.get(f"{sink.url}/hooks/{hook}").json()
        return summary if summary["effects"] else None

    assert eventually(delivered, timeout=30)["event_ids"] == [event.event_id]
