"""The ledger's cache-invalidation subscription: a poison message is dead-lettered and
acknowledged, and the events after it still invalidate."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from tests.e2e.ledger.conftest import OpenAccount
from tests.fixtures.fanout import DeadLetterReader, EventPublisher, eventually, unique

SUBSCRIPTION = TOPOLOGY.subscription("ledger-cache-invalidation")


def test_poison_is_dead_lettered_once_and_a_later_event_still_invalidates(
    fanout_service: Callable[[str], launcher.RunningService],
    client: httpx.Client,
    open_account: OpenAccount,
    events: EventPublisher,
    dead_letter_reader: Callable[[str], DeadLetterReader],
) -> None:
    """An undecodable message pushed to ``/internal/invalidate`` lands on the subscription's
    dead-letter topic once, with its reason, and is acknowledged: the event published after
    it with the same ordering key, which Pub/Sub holds back until the poison is acknowledged
    (or moved by Pub/Sub itself after its delivery attempts, a copy without our attributes),
    arrives and drops the cached entry it supersedes (the next cached read is a miss). The
    ledger keeps running."""
    ledger = fanout_service("ledger")
    reader = dead_letter_reader(SUBSCRIPTION.dead_letter_topic)
    account = open_account(100)
    cached = client.get(f"/v1/accounts/{account}", params={"consistency": "cached"}).json()
    assert (
        client.get(f"/v1/accounts/{account}", params={"consistency": "cached"}).json()["served_by"]
        == "cache"
    )
    invalidations = client.get("/internal/cache").json()["invalidations"]

    marker, payer = unique("poison"), unique("acct")
    events.raw(b"{not json", ordering_key=payer, marker=marker)
    events.transfer(payer, account, 1, to_version=cached["version"] + 1)

    def invalidated() -> int | None:
        count = client.get("/internal/cache").json()["invalidations"]
        return count if count > invalidations else None

    assert eventually(invalidated) == invalidations + 1
    after = client.get(f"/v1/accounts/{account}", params={"consistency": "cached"}).json()
    assert after["served_by"] == "leader"

    def poison() -> list | None:
        return [m for m in reader.pull() if m.attributes.get("marker") == marker] or None

    dead = eventually(poison)
    dead += [m for m in reader.pull() if m.attributes.get("marker") == marker]
    assert len(dead) == 1
    assert dead[0].data == b"{not json"
    assert dead[0].attributes["source_subscription"] == SUBSCRIPTION.name
    assert dead[0].attributes["dead_letter_reason"].startswith("undecodable")
    assert ledger.process.poll() is None
