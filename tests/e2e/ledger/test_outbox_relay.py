"""The outbox relay delivers every committed transfer's event at least once, even when it is
killed with SIGKILL in the middle of a burst and restarted."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import httpx
from conftest import OpenAccount, transfer

from caplab.local import launcher
from tests.fixtures.relay import pull_until
from tests.fixtures.services import ServiceRunner

PROJECT = "caplab-local"


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


def test_relay_killed_mid_burst_loses_nothing(
    services: ServiceRunner,
    service_environ: dict[str, str],
    event_tap: str,
    client: httpx.Client,
    open_account: OpenAccount,
) -> None:
    """SIGKILL the relay while transfers commit, restart it: every committed transfer's event
    reaches the topic (duplicates allowed)."""
    accounts = [open_account(100_000) for _ in range(3)]
    committed: list[str] = []
    killed = threading.Event()

    def burst() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as http:
            for i in range(90):
                response = transfer(http, accounts[i % 3], accounts[(i + 1) % 3], 1 + i)
                assert response.status_code == 201, response.text
                committed.append(response.json()["transfer_id"])
                if i == 45:
                    killed.wait(30)

    # A short lease: the restarted relay takes over from the killed one within 2 s.
    fast = {"CAPLAB_RELAY_POLL_INTERVAL": "10ms", "CAPLAB_RELAY_LEASE": "2s"}
    writer = threading.Thread(target=burst)
    relay = services.launch("relay", fast)
    try:
        writer.start()
        while len(committed) < 30:
            time.sleep(0.01)
        launcher.kill(relay)  # SIGKILL mid-burst: no shutdown hook runs
        killed.set()
        writer.join()
    finally:
        killed.set()
        launcher.stop(relay)
    with services.restartable("relay", fast) as restarted:
        seen = drain(event_tap, set(committed))
        stats = httpx.get(restarted.url + "/stats").json()
    assert relay.process.returncode == -9
    assert len(committed) == 90
    assert set(committed) <= set(seen)
    assert stats["published"] > 0  # the restarted relay published what the first one left
