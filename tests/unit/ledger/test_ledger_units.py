"""The ledger's pure parts: cache-aside bookkeeping, the event contract, settings, models."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from pydantic import ValidationError

from services.ledger.cache import BalanceCache
from services.ledger.models import TransferIn
from services.ledger.settings import LedgerSettings
from services.ledger.store import AccountRow
from services.shared.events import TransferEvent
from services.shared.idempotency import request_hash

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def row(version: int, account: str = "a") -> AccountRow:
    return AccountRow(account, "owner", 100 * version, version, WHEN)


def test_cache_counts_misses_and_hits() -> None:
    """A miss, a fill, then hits while the entry is young enough."""
    cache = BalanceCache(timedelta(minutes=1))
    assert cache.get("a", timedelta(minutes=1)) is None
    cache.put(row(1), "t1")
    hit = cache.get("a", timedelta(minutes=1))
    assert hit is not None
    assert hit.row.version == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_cache_respects_a_tighter_max_age_and_the_ttl() -> None:
    """An entry older than the request's bound is a miss; older than the TTL it expires."""
    cache = BalanceCache(timedelta(0))
    cache.put(row(1), "t1")
    assert cache.get("a", timedelta(hours=1)) is None
    assert cache.stats().expirations == 1
    assert cache.stats().entries == 0


def test_invalidation_drops_only_older_versions() -> None:
    """An event for version 2 drops a cached version 1, not a cached version 2."""
    cache = BalanceCache(timedelta(minutes=1))
    cache.put(row(1), "t1")
    assert cache.invalidate("a", 2) is True
    cache.put(row(2), "t2")
    assert cache.invalidate("a", 2) is False
    assert cache.stats().invalidations == 1


def test_fill_from_a_read_older_than_an_invalidation_is_refused() -> None:
    """A slow read of version 1 finishing after the event for version 2 is not cached."""
    cache = BalanceCache(timedelta(minutes=1))
    cache.invalidate("a", 2)
    cache.put(row(1), "t1")
    assert cache.get("a", timedelta(minutes=1)) is None
    assert cache.stats().refused_fills == 1


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
