"""One relay pass at a time on the emulators: a poison row is parked and the rows behind it are
published; nothing is stamped that Pub/Sub did not acknowledge; a deposed relay's stamp is
refused and the new leader publishes the row."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from services.relay.lease import Deposed, Lease
from services.relay.outbox import PublishFailed
from services.relay.reads import Reads
from services.shared.transactions import TransactionRunner
from tests.fixtures.relay import (
    add_outbox_row,
    drain,
    make_relay,
    outbox_state,
    pull_until,
    values,
)


def test_a_poison_row_is_parked_and_the_rows_behind_it_are_published(
    make_lease: Callable[..., Lease],
    runner: TransactionRunner,
    reads: Reads,
    publisher: Any,
    topic: tuple[str, str],
) -> None:
    topic_path, subscription_path = topic
    lease = make_lease("leader", 30.0)
    lease.step()
    epoch = lease.leader_epoch()
    assert epoch is not None
    relay = make_relay(runner, reads, lease, publisher, topic_path)
    before = add_outbox_row(runner)
    poison = add_outbox_row(runner, payload="{this is not json")
    behind = add_outbox_row(runner)
    drain(relay, epoch)

    state = outbox_state(reads, [before, poison, behind])
    for published in (before, behind):
        assert state[published]["published_at"] is not None
        assert state[published]["published_epoch"] == epoch
        assert state[published]["parked_at"] is None
    assert state[poison]["published_at"] is None
    assert state[poison]["parked_at"] is not None
    assert "not JSON" in state[poison]["parked_reason"]
    assert relay.stats.parked >= 1

    received = pull_until(subscription_path, {before, behind})
    mine = [m for m in received if m.attributes["event_id"] in state]
    assert sorted(values(mine)) == sorted([before, behind])
    for message in mine:
        body = json.loads(message.data)
        assert body["committed_at"] == message.attributes["committed_at"]
        assert message.ordering_key == body["from"]
    assert relay.relay_once(epoch) == 0  # the parked row is no longer pending


def test_nothing_is_stamped_that_pub_sub_did_not_acknowledge(
    make_lease: Callable[..., Lease],
    runner: TransactionRunner,
    reads: Reads,
    publisher: Any,
    topic: tuple[str, str],
) -> None:
    """Publishing to a topic that does not exist fails every message: the pass raises after
    counting the failures, and the rows are still pending for the next pass."""
    topic_path, _ = topic
    lease = make_lease("leader", 30.0)
    lease.step()
    epoch = lease.leader_epoch()
    assert epoch is not None
    drain(make_relay(runner, reads, lease, publisher, topic_path), epoch)
    row = add_outbox_row(runner)
    broken = make_relay(runner, reads, lease, publisher, topic_path + "-missing")
    with pytest.raises(PublishFailed):
        broken.relay_once(epoch)
    assert broken.stats.publish_failures >= 1
    assert outbox_state(reads, [row])[row]["published_at"] is None
    drain(make_relay(runner, reads, lease, publisher, topic_path), epoch)
    assert outbox_state(reads, [row])[row]["published_epoch"] == epoch


def test_a_deposed_relays_stamp_is_refused_and_the_new_leader_publishes_the_row(
    make_lease: Callable[..., Lease],
    runner: TransactionRunner,
    reads: Reads,
    publisher: Any,
    topic: tuple[str, str],
) -> None:
    """The old leader wakes up after its lease passed to another relay and runs a pass under
    its old epoch: it may publish (a duplicate, the handover window) but its stamp is
    refused, so the row stays pending and is stamped by the new leader's epoch."""
    topic_path, _ = topic
    old_lease, new_lease = make_lease("old", 30.0), make_lease("new", 30.0)
    old_lease.step()
    old_epoch = old_lease.leader_epoch()
    assert old_epoch is not None
    old = make_relay(runner, reads, old_lease, publisher, topic_path)
    drain(old, old_epoch)
    old_lease.release()  # stands for the lease running out while the old leader stalls
    new_lease.step()
    new_epoch = new_lease.leader_epoch()
    assert new_epoch is not None
    assert new_epoch == old_epoch + 1
    row = add_outbox_row(runner)
    with pytest.raises(Deposed):
        old.relay_once(old_epoch)
    assert outbox_state(reads, [row])[row]["published_at"] is None
    drain(make_relay(runner, reads, new_lease, publisher, topic_path), new_epoch)
    assert outbox_state(reads, [row])[row]["published_epoch"] == new_epoch
