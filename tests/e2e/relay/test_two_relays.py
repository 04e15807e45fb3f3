"""Two relay processes on one stack: only the lease holder publishes, each event once; when
the holder is killed with SIGKILL the other takes over with the next epoch and every event
still reaches the topic, duplicates only for rows the killed holder published but never
stamped (the handover window)."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import Any

from caplab.local import launcher
from caplab.local.launcher import RunningService
from services.relay.reads import Reads
from tests.fixtures.fanout import eventually
from tests.fixtures.relay import Transfer, launch_relays, outbox_state, relay_stats
from tests.fixtures.services import ServiceRunner

RELAY_ENV = {"CAPLAB_RELAY_LEASE": "2s", "CAPLAB_RELAY_POLL_INTERVAL": "20ms"}


def pull_events(subscription: str, wanted: set[str]) -> dict[str, dict[str, set[str]]]:
    """Pull (and ack) until every transfer id in ``wanted`` arrived or a pull came back
    empty: for each transfer id, its event id and the distinct Pub/Sub message ids that
    carried it (a redelivery keeps its message id; a second publish gets a new one)."""
    from google.cloud import pubsub_v1

    seen: dict[str, dict[str, Any]] = defaultdict(lambda: {"event_ids": set(), "messages": set()})
    subscriber = pubsub_v1.SubscriberClient()
    try:
        while not wanted <= set(seen):
            response = subscriber.pull(subscription=subscription, max_messages=500, timeout=10)
            if not response.received_messages:
                break
            for received in response.received_messages:
                event = json.loads(received.message.data)
                seen[event["transfer_id"]]["event_ids"].add(event["event_id"])
                seen[event["transfer_id"]]["messages"].add(received.message.message_id)
            subscriber.acknowledge(
                subscription=subscription,
                ack_ids=[r.ack_id for r in response.received_messages],
            )
    finally:
        subscriber.close()
    return dict(seen)


def test_one_leader_publishes_each_event_once_and_a_killed_leader_is_replaced(
    services: ServiceRunner,
    emulator_env: dict[str, str],
    event_tap: str,
    transfer: Transfer,
    database: Any,
) -> None:
    relays = launch_relays(services, 2, RELAY_ENV)
    try:

        def the_leader() -> RunningService | None:
            return next((r for r in relays if relay_stats(r)["lease"]["leader"]), None)

        leader = eventually(the_leader)
        follower = next(r for r in relays if r is not leader)
        epoch = relay_stats(leader)["lease"]["epoch"]

        # Both running: the leader publishes everything, the follower nothing.
        calm = [transfer(amount) for amount in range(1, 21)]
        calm_seen = pull_events(event_tap, set(calm))
        follower_stats = relay_stats(follower)
        assert (follower_stats["published"], follower_stats["polls"]) == (0, 0)
        assert follower_stats["lease"]["observed"]["epoch"] == epoch

        # The leader is killed while transfers commit.
        stormy: list[str] = []
        kill_now = threading.Event()

        def burst() -> None:
            for amount in range(21, 61):
                stormy.append(transfer(amount))
                if amount == 30:
                    kill_now.set()

        writer = threading.Thread(target=burst)
        writer.start()
        assert kill_now.wait(60)
        launcher.kill(leader)
        writer.join()

        def took_over() -> dict[str, Any] | None:
            lease = relay_stats(follower)["lease"]
            return lease if lease["leader"] else None

        assert eventually(took_over)["epoch"] == epoch + 1
        stormy_seen = pull_events(event_tap, set(stormy))
    finally:
        for relay in relays:
            launcher.stop(relay)

    assert leader.process.returncode == -9
    assert set(calm) <= set(calm_seen)
    assert set(stormy) <= set(stormy_seen)
    assert all(len(calm_seen[t]["messages"]) == 1 for t in calm)
    seen = {t: calm_seen.get(t) or stormy_seen[t] for t in calm + stormy}
    event_of = {t: next(iter(s["event_ids"])) for t, s in seen.items()}
    stamped = outbox_state(Reads(database, 5.0), list(event_of.values()))
    for transfer_id, event_id in event_of.items():
        stamped_by = stamped[event_id]["published_epoch"]
        copies = len(seen[transfer_id]["messages"])
        assert stamped_by in (epoch, epoch + 1)
        # Twice only if the killed leader published it and the survivor had to again.
        assert copies == 1 or stamped_by == epoch + 1, (transfer_id, copies, stamped_by)
