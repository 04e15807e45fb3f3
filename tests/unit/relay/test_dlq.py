"""``caplab dlq replay`` finds each dead-letter subscription's source topic in the topology
and republishes a dead letter with its own attributes only."""

from __future__ import annotations

import pytest

from caplab.cli import build_parser
from caplab.core.errors import CaplabError
from caplab.core.topology import TOPOLOGY
from caplab.ops.dlq import original_attributes, source_topic


def test_every_dead_letter_subscription_replays_to_the_topic_it_collects_from() -> None:
    for subscription in TOPOLOGY.subscriptions:
        assert source_topic(subscription.dead_letter_topic) == subscription.topic


def test_an_unknown_subscription_is_refused_with_the_choices() -> None:
    with pytest.raises(CaplabError, match="activity-projector-dead-letter"):
        source_topic("transfer-events")


def test_dead_lettering_bookkeeping_is_dropped_and_the_rest_kept() -> None:
    attributes = {
        "event_id": "e1",
        "event_type": "transfer.committed",
        "committed_at": "2026-03-01T12:00:00Z",
        "CloudPubSubDeadLetterSourceDeliveryCount": "100",
        "CloudPubSubDeadLetterSourceSubscription": "activity-projector",
        "dead_letter_reason": "undecodable",
        "source_subscription": "activity-projector",
        "source_message_id": "42",
    }
    assert original_attributes(attributes) == {
        "event_id": "e1",
        "event_type": "transfer.committed",
        "committed_at": "2026-03-01T12:00:00Z",
    }


def test_the_command_is_registered() -> None:
    args = build_parser("dlq").parse_args(
        ["dlq", "replay", "notifier-dead-letter", "--project", "p", "--max-messages", "5"]
    )
    assert (args.subscription, args.project, args.max_messages) == ("notifier-dead-letter", "p", 5)
