"""``caplab dlq replay`` (the real command, as a process) moves a dead-lettered transfer event
back to ``transfer-events``: the activity service projects the rows that were missing, the
republished message carries the event's own attributes and ordering key, and poison stays in
the dead-letter subscription."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from caplab.local.launcher import RunningService
from tests.fixtures.fanout import eventually, transfer_event
from tests.fixtures.relay import pull_until

DEAD_LETTERS = TOPOLOGY.subscription("activity-projector").dead_letter_topic
# What Pub/Sub adds to a message it dead-letters (as the emulator does).
PUBSUB_BOOKKEEPING = {
    "CloudPubSubDeadLetterSourceDeliveryCount": "100",
    "CloudPubSubDeadLetterSourceSubscription": "activity-projector",
    "CloudPubSubDeadLetterSourceSubscriptionProject": LOCAL_PROJECT,
}


def dead_letter_pull(subscriber: Any, ack: bool) -> list[Any]:
    """Pull what the dead-letter subscription holds now (acknowledging it if ``ack``)."""
    response = subscriber.pull(
        subscription=f"projects/{LOCAL_PROJECT}/subscriptions/{DEAD_LETTERS}",
        max_messages=500,
        return_immediately=True,
        timeout=10,
    )
    if ack and response.received_messages:
        subscriber.acknowledge(
            subscription=f"projects/{LOCAL_PROJECT}/subscriptions/{DEAD_LETTERS}",
            ack_ids=[r.ack_id for r in response.received_messages],
        )
    return list(response.received_messages)


def test_a_replay_restores_the_missing_activity_rows(
    fanout_service: Callable[[str], RunningService],
    emulator_env: dict[str, str],
    event_tap: str,
) -> None:
    from google.cloud import pubsub_v1

    activity = fanout_service("activity")
    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    while dead_letter_pull(subscriber, ack=True):  # what other tests dead-lettered
        pass

    source, target = f"acct-{uuid.uuid4().hex[:10]}", f"acct-{uuid.uuid4().hex[:10]}"
    event = transfer_event(source, target, 4200, from_version=2, to_version=5)
    dead_letter_topic = f"projects/{LOCAL_PROJECT}/topics/{DEAD_LETTERS}"
    publisher.publish(
        dead_letter_topic,
        event.to_json(),
        ordering_key=source,
        **event.attributes(),
        **PUBSUB_BOOKKEEPING,
    ).result(timeout=10)
    poison_marker = uuid.uuid4().hex
    publisher.publish(
        dead_letter_topic,
        b"\xff not json",
        dead_letter_reason="undecodable: not JSON",
        source_subscription="activity-projector",
        marker=poison_marker,
    ).result(timeout=10)
    feed = f"{activity.url}/v1/accounts/{source}/activity"
    assert httpx.get(feed).json()["items"] == []  # the event never reached the projector

    replay = subprocess.run(
        [sys.executable, "-m", "caplab", "dlq", "replay", DEAD_LETTERS],
        env={**os.environ, **emulator_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1;" in replay.stdout
    assert "poison left in place 1" in replay.stdout

    items = eventually(lambda: httpx.get(feed).json()["items"] or None)
    assert [(i["transfer_id"], i["amount_cents"]) for i in items] == [(event.transfer_id, -4200)]
    credited = httpx.get(f"{activity.url}/v1/accounts/{target}/activity").json()["items"]
    assert [(i["transfer_id"], i["amount_cents"]) for i in credited] == [(event.transfer_id, 4200)]

    republished = [
        m
        for m in pull_until(event_tap, {event.event_id})
        if json.loads(m.data)["event_id"] == event.event_id
    ]
    assert len(republished) == 1
    assert republished[0].data == event.to_json()
    assert dict(republished[0].attributes) == event.attributes()
    assert republished[0].ordering_key == source

    left = dead_letter_pull(subscriber, ack=True)
    assert [m.message.attributes.get("marker") for m in left] == [poison_marker]
    subscriber.close()
