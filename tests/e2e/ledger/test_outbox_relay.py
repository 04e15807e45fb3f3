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
from emulators import manager
from tests.fixtures.services import ServiceRunner

PROJECT = "caplab-local"


def drain(service_environ: dict[str, str], subscription: str, wanted: set[str]) -> Counter[str]:
    """Pull (and ack) until every transfer id in ``wanted`` arrived or 30 s passed; counts per
    transfer id of every event received."""
    from google.cloud import pubsub_v1

    seen: Counter[str] = Counter()
    with manager.exported(service_environ):
        subscriber = pubsub_v1.SubscriberClient()
        try:
            deadline = time.monotonic() + 30
            while not wanted <= set(seen) and time.monotonic() < deadline:
                response = subscriber.pull(subscription=subscription, max_messages=500, timeout=5)
                for received in response.received_messages:
                    event = json.loads(received.message.data)
                    assert received.message.attributes["event_id"] == event["event_id"]
                    assert received.message.ordering_key == event["from"]
                    seen[event["transfer_id"]] += 1
                if response.received_messages:
                    subscriber.acknowledge(
                        subscription=subscription,
                        ack_ids=[r.ack_id for r in response.received_messages],
                    )
        finally:
            subscriber.close()
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
        seen = drain(service_environ, event_tap, set(committed))
        stats = httpx.get(restarted.url + "/stats").json()
    assert relay.process.returncode == -9
    assert len(committed) == 90
    assert set(committed) <= set(seen)
    assert stats["published"] > 0  # the restarted relay published what the first one left
