"""What the relay publishes is built from the Outbox row alone: for a transfer it is exactly
the event consumers decode; any other event type passes through; a row that can never be a
valid message is refused (and parked by the relay)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds

from services.relay.outbox import Outgoing, Unpublishable
from services.shared.events import TRANSFER_COMMITTED, TransferCommitted, TransferEvent

COMMITTED = DatetimeWithNanoseconds(2026, 3, 1, 12, 0, 0, nanosecond=123456789, tzinfo=UTC)


def test_a_transfer_row_becomes_the_transfer_committed_event_consumers_decode() -> None:
    event = TransferEvent(
        event_id="e1",
        transfer_id="t1",
        from_account="alice",
        to_account="bob",
        amount_cents=250,
        from_version=3,
        to_version=8,
    )
    outgoing = Outgoing.from_row(
        "e1", TRANSFER_COMMITTED, "alice", event.to_json().decode(), COMMITTED
    )
    published = event.committed(COMMITTED)
    assert outgoing.data == published.to_json()
    assert outgoing.attributes == published.attributes()
    assert outgoing.ordering_key == published.ordering_key
    decoded = TransferCommitted.from_json(outgoing.data)
    assert decoded.committed_at == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert json.loads(outgoing.data)["committed_at"] == "2026-03-01T12:00:00.123456789Z"


def test_any_event_type_is_published_as_stored_with_its_commit_timestamp() -> None:
    payload = {"type": "payout.settled", "event_id": "e2", "payout_id": "p1", "extra": [1, 2]}
    outgoing = Outgoing.from_row("e2", "payout.settled", "acct-9", json.dumps(payload), COMMITTED)
    stamp = "2026-03-01T12:00:00.123456789Z"
    assert json.loads(outgoing.data) == {**payload, "committed_at": stamp}
    assert outgoing.attributes["event_type"] == "payout.settled"
    assert outgoing.ordering_key == "acct-9"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "not JSON"),
        ('["a", "list"]', "not a JSON object"),
        ('{"type": "transfer.committed", "event_id": "other"}', "event_id"),
        ('{"type": "transfer.reversed", "event_id": "e3"}', "EventType"),
        ('{"event_id": "e3"}', "EventType"),
    ],
)
def test_a_row_that_can_never_be_a_valid_message_is_refused(payload: str, reason: str) -> None:
    with pytest.raises(Unpublishable, match=reason):
        Outgoing.from_row("e3", TRANSFER_COMMITTED, "k", payload, COMMITTED)
