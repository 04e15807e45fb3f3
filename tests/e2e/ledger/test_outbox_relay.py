"""The outbox relay delivers every committed transfer's event at least once, even when it is
killed with SIGKILL in the middle of a burst and restarted: the restarted relay publishes
exactly the rows the killed one left, and only those can arrive twice."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import httpx

from caplab.local import launcher
from tests.e2e.ledger.conftest import OpenAccount, transfer
from tests.fixtures.fanout import eventually
from tests.fixtures.relay import pull_until, relay_stats
from tests.fixtures.services import ServiceRunner

KILL_AFTER = 30
"""Transfers committed before the relay is killed (of 90)."""


def drain(subscription: str, wanted: set[str]) -> Counter[str]:
    """Pull (and ack) until every transfer id in ``wanted`` arrived (or a pull found nothing
    for 30 s); counts per transfer id of every event received, each checked against the
    contract's attributes and ordering key."""
    seen: Counter[str] = Counter()
    for message in pull_until(subscription, wanted, field="transfer_id", wait=30):
        event = json.loads(message.data)
        assert message.attributes["event_id"] == event["event_id"]
        assert message.ordering_key == event["from"]
        seen[event["transfer_id"]] += 1
    return seen


def pending(database: Any) -> list[str | None]:
    """The transfer id (None for another event type) of every Outbox row still to publish:
    neither stamped published nor parked, whichever test committed it."""
    with database.snapshot() as snapshot:
        rows = snapshot.execute_sql(
            "SELECT Payload FROM Outbox WHERE PublishedAt IS NULL AND ParkedAt IS NULL"
        )
        return [json.loads(payload).get("transfer_id") for (payload,) in rows]


def test_relay_killed_mid_burst_loses_nothing_and_the_restart_publishes_what_it_left(
    services: ServiceRunner,
    event_tap: str,
    client: httpx.Client,
    open_account: OpenAccount,
    ledger_database: Any,
) -> None:
    """SIGKILL the relay once KILL_AFTER transfers have committed, while the burst goes on;
    restart it once the burst is over. Every committed transfer's event reaches the topic.
    The restarted relay publishes (and stamps) exactly the rows still pending when it
    started, and a transfer arrives twice only if its row was among those: the killed relay
    may have published it without stamping it. A row the killed relay stamped is never
    published again."""
    accounts = [open_account(100_000) for _ in range(3)]
    committed: list[str] = []
    enough = threading.Event()
    killed = threading.Event()

    def burst() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as http:
            for i in range(90):
                response = transfer(http, accounts[i % 3], accounts[(i + 1) % 3], 1 + i)
                assert response.status_code == 201, response.text
                committed.append(response.json()["transfer_id"])
                if len(committed) == KILL_AFTER:
                    enough.set()
                if i == 45:
                    killed.wait(30)

    # A short lease: the restarted relay takes over from the killed one within 2 s.
    fast = {"CAPLAB_RELAY_POLL_INTERVAL": "10ms", "CAPLAB_RELAY_LEASE": "2s"}
    writer = threading.Thread(target=burst)
    relay = services.launch("relay", fast)
    try:
        writer.start()
        assert enough.wait(60), "the burst never reached KILL_AFTER transfers"
        launcher.kill(relay)  # SIGKILL mid-burst: no shutdown hook runs
        killed.set()
        writer.join()
    finally:
        killed.set()
        launcher.stop(relay)
    left = pending(ledger_database)
    with services.restartable("relay", fast) as restarted:
        seen = drain(event_tap, set(committed))
        eventually(lambda: pending(ledger_database) == [] or None)
        stats = relay_stats(restarted)
    assert relay.process.returncode == -9
    assert len(committed) == 90
    assert set(committed) <= set(seen)
    assert set(committed) & set(left), "the killed relay left nothing of the burst"
    assert stats["published"] + stats["parked"] == len(left)
    assert {tid for tid, count in seen.items() if count > 1} <= set(left)
