"""The ledger's pure parts: the event contract, settings, models (the cache: test_cache.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from pydantic import ValidationError

from services.ledger.models import TransferIn
from services.ledger.settings import LedgerSettings
from services.ledger.store import AccountRow
from services.shared.events import TransferEvent
from services.shared.idempotency import request_hash

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def row(version: int, account: str = "a") -> AccountRow:
    return AccountRow(account, "owner", 100 * version, version, WHEN)


def test_event_message_follows_the_contract() -> None:
    """Data carries the event with its commit timestamp; attributes and ordering key match."""
    payload = TransferEvent("e1", "t1", "alice", "bob", 250, 3, 7).to_json().decode()
    committed = DatetimeWithNanoseconds(2026, 1, 2, 3, 4, 5, nanosecond=123456789, tzinfo=UTC)
    published = TransferEvent.from_json(payload).committed(committed)
    event = json.loads(published.to_json().decode("utf-8"))
    assert event == {
        "event_id": "e1",
        "type": "transfer.committed",
        "transfer_id": "t1",
        "from": "alice",
        "to": "bob",
        "amount_cents": 250,
        "from_version": 3,
        "to_version": 7,
        "committed_at": "2026-01-02T03:04:05.123456789Z",
    }
    assert published.attributes() == {
        "event_id": "e1",
        "event_type": "transfer.committed",
        "committed_at": "2026-01-02T03:04:05.123456789Z",
    }
    assert published.ordering_key == "alice"


def test_settings_defaults_and_overrides() -> None:
    """Durations come from the environment mapping, with documented defaults."""
    defaults = LedgerSettings.from_environ({})
    assert defaults.default_staleness == timedelta(seconds=10)
    assert defaults.max_staleness == timedelta(hours=1)
    tuned = LedgerSettings.from_environ(
        {"CAPLAB_LEDGER_CACHE_TTL": "1500ms", "CAPLAB_LEDGER_DEADLINE": "2s"}
    )
    assert tuned.cache_ttl == timedelta(milliseconds=1500)
    assert tuned.deadline == timedelta(seconds=2)
    with pytest.raises(ValueError, match="CAPLAB_LEDGER_DEADLINE"):
        LedgerSettings.from_environ({"CAPLAB_LEDGER_DEADLINE": "soon"})


@pytest.mark.parametrize("amount", [0, -1, 1.0, "5", 10**16])
def test_transfer_amount_is_positive_integer_cents(amount: object) -> None:
    """Floats, strings, zero, negatives and absurd amounts are refused, never rounded."""
    with pytest.raises(ValidationError):
        TransferIn.model_validate({"from": "a", "to": "b", "amount_cents": amount})


def test_request_hash_depends_on_the_body_only() -> None:
    """Equal bodies hash equally; any field change changes the hash."""
    one = TransferIn.model_validate({"from": "a", "to": "b", "amount_cents": 5})
    same = TransferIn.model_validate({"amount_cents": 5, "to": "b", "from": "a"})
    other = TransferIn.model_validate({"from": "a", "to": "b", "amount_cents": 6})
    hashes = [request_hash(m.model_dump(by_alias=True)) for m in (one, same, other)]
    assert hashes[0] == hashes[1] != hashes[2]
