"""Events through Pub/Sub push → notifier → Cloud Tasks emulator → webhook sink: with the
sink failing some requests, every event's effect reaches it exactly once; a poison message is
dead-lettered without holding back the events behind it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from tests.fixtures.fanout import DeadLetterReader, EventPublisher, eventually, unique

EVENTS = 5
FAILURES = 3


@pytest.fixture(scope="module")
def notifier(
    fanout_service: Callable[[str], launcher.RunningService],
) -> launcher.RunningService:
    return fanout_service("notifier")


def test_each_event_reaches_the_webhook_once_despite_failures_and_duplicates(
    notifier: launcher.RunningService, sink: launcher.RunningService, events: EventPublisher
) -> None:
    """The first FAILURES deliveries fail and are retried by the queue; an event published
    twice schedules one task (ALREADY_EXISTS); the sink sees each event id succeed once,
    carried in the Webhook-Id header (the payer registered no webhook: it gets none)."""
    payer, payee, hook = unique("acct"), unique("acct"), unique("hook")
    registration = httpx.put(
        f"{notifier.url}/v1/accounts/{payee}/webhook", json={"url": f"{sink.url}/hooks/{hook}"}
    )
    assert registration.status_code == 200
    assert httpx.put(f"{sink.url}/control/{hook}", json={"fail_next": FAILURES}).status_code == 200

    published = [events.transfer(payer, payee, 10 + i) for i in range(EVENTS)]
    duplicate = published[0]
    events.raw(duplicate.to_json(), **duplicate.attributes())

    def all_effects() -> dict | None:
        summary = httpx.get(f"{sink.url}/hooks/{hook}").json()
        return summary if summary["effects"] >= EVENTS else None

    summary = eventually(all_effects, timeout=40)
    assert set(summary["event_ids"]) == {e.event_id for e in published}
    assert summary["succeeded"] == EVENTS
    assert summary["received"] == EVENTS + FAILURES
    failed = [d for d in summary["deliveries"] if d["status"] >= 500]
    assert len(failed) == FAILURES
    assert all(d["event_id"] in summary["event_ids"] for d in failed)


def test_poison_is_dead_lettered_once_and_the_event_behind_it_is_delivered(
    notifier: launcher.RunningService,
    sink: launcher.RunningService,
    events: EventPublisher,
    dead_letter_reader: Callable[[str], DeadLetterReader],
) -> None:
    """An undecodable message lands on the notifier subscription's dead-letter topic once,
    with its reason, and is acknowledged: the event published after it with the same
    ordering key, which Pub/Sub holds back until the poison is acknowledged (or moved by
    Pub/Sub itself after its delivery attempts, a copy without our attributes), reaches the
    payee's webhook. The notifier keeps running."""
    reader = dead_letter_reader(TOPOLOGY.subscription("notifier").dead_letter_topic)
    payer, payee, hook = unique("acct"), unique("acct"), unique("hook")
    registration = httpx.put(
        f"{notifier.url}/v1/accounts/{payee}/webhook", json={"url": f"{sink.url}/hooks/{hook}"}
    )
    assert registration.status_code == 200
    marker = unique("poison")
    events.raw(b"\xff not json", ordering_key=payer, marker=marker)
    later = events.transfer(payer, payee, 7)

    def delivered() -> dict | None:
        summary = httpx.get(f"{sink.url}/hooks/{hook}").json()
        return summary if summary["effects"] else None

    assert eventually(delivered)["event_ids"] == [later.event_id]

    def poison() -> list | None:
        return [m for m in reader.pull() if m.attributes.get("marker") == marker] or None

    dead = eventually(poison)
    dead += [m for m in reader.pull() if m.attributes.get("marker") == marker]
    assert len(dead) == 1
    assert dead[0].data == b"\xff not json"
    assert dead[0].attributes["source_subscription"] == "notifier"
    assert dead[0].attributes["dead_letter_reason"].startswith("undecodable")
    assert notifier.process.poll() is None
