"""Pure pieces of the fan-out: activity row keys and page tokens, the event contract, the
Pub/Sub push envelope, and the sink's fault injection and deduplication (in process)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from caplab.core import rowkey
from caplab.local.sink.app import create_app as create_sink
from services.shared.events import TransferCommitted, UndecodableEvent
from services.shared.oidc import OidcVerifier
from services.shared.pubsub_push import InvalidEnvelope, PushMessage

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def test_row_keys_sort_newest_first_within_an_account_prefix() -> None:
    """Later commits sort first; the account prefix holds only that account's rows."""
    older = rowkey.row_key("acct-1", T0, "t1")
    newer = rowkey.row_key("acct-1", T0 + timedelta(microseconds=1), "t2")
    other = rowkey.row_key("acct-10", T0, "t3")
    assert newer < older
    prefix = rowkey.account_prefix("acct-1")
    assert older.startswith(prefix)
    assert not other.startswith(prefix)
    assert len(older.split(b"#")[1]) == 19
    assert all(rowkey.prefix_end(prefix) > key for key in (older, newer))


def test_key_parts_must_not_contain_the_delimiter() -> None:
    """An account id with '#' would break prefix isolation: refused."""
    with pytest.raises(rowkey.InvalidKeyPart):
        rowkey.row_key("a#b", T0, "t")


def test_page_tokens_round_trip_and_are_bound_to_their_account() -> None:
    """A token decodes to the key it encodes, only for that account's prefix."""
    key = rowkey.row_key("acct-1", T0, "t1")
    token = rowkey.encode_page_token(key)
    assert rowkey.decode_page_token(token, rowkey.account_prefix("acct-1")) == key
    with pytest.raises(rowkey.InvalidKeyPart):
        rowkey.decode_page_token(token, rowkey.account_prefix("acct-2"))


def _event_json(**overrides: object) -> bytes:
    body = {
        "event_id": "e1", "type": "transfer.committed", "transfer_id": "t1", "from": "a",
        "to": "b", "amount_cents": 5, "committed_at": "2026-11-26T06:00:00.123456789Z",
        "from_version": 2, "to_version": 3,
    }  # fmt: skip
    return json.dumps(body | overrides).encode()


def test_event_contract_decodes_and_round_trips() -> None:
    """The agreed JSON decodes (nanosecond timestamps truncated) and re-encodes equal."""
    event = TransferCommitted.from_json(_event_json())
    assert (event.from_account, event.to_account, event.amount_cents) == ("a", "b", 5)
    assert event.committed_at == datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC)
    assert TransferCommitted.from_json(event.to_json()) == event


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"[]",
        _event_json(type="transfer.reversed"),
        _event_json(amount_cents=0),
        _event_json(amount_cents="5"),
        _event_json(committed_at="yesterday"),
        _event_json(to=""),
    ],
)
def test_anything_off_contract_is_undecodable(data: bytes) -> None:
    """Poison: wrong encoding, shape, type, amount or timestamp."""
    with pytest.raises(UndecodableEvent):
        TransferCommitted.from_json(data)


def test_push_envelope_parses_and_rejects_non_envelopes() -> None:
    """The push JSON yields data, attributes, ordering key; deliveryAttempt is optional."""
    envelope = {
        "message": {
            "data": base64.b64encode(b"hi").decode(),
            "attributes": {"event_id": "e1"},
            "messageId": "42",
            "orderingKey": "a",
        },
        "subscription": "projects/p/subscriptions/s",
        "deliveryAttempt": 3,
    }
    message = PushMessage.from_envelope(json.dumps(envelope).encode())
    assert (message.data, message.ordering_key, message.delivery_attempt) == (b"hi", "a", 3)
    with pytest.raises(InvalidEnvelope):
        PushMessage.from_envelope(b'{"message": {"data": "not base64!"}}')


def test_push_auth_without_audience_accepts_and_with_one_requires_a_bearer_token() -> None:
    """Locally (no audience) nothing is verified; configured, a missing token is refused."""
    assert OidcVerifier().verify(None)
    assert not OidcVerifier(audience="https://activity.example").verify(None)
    assert not OidcVerifier(audience="https://activity.example").verify("Bearer not-a-jwt")


async def test_sink_fails_next_n_then_counts_each_event_once() -> None:
    """fail_next answers 503 that many times; a repeated Webhook-Id is a duplicate, not a
    second effect; faults are per hook."""
    transport = httpx.ASGITransport(app=create_sink())
    async with httpx.AsyncClient(transport=transport, base_url="http://sink") as sink:
        await sink.put("/control/h1", json={"fail_next": 1})
        statuses = [
            (await sink.post("/hooks/h1", headers={"Webhook-Id": eid})).status_code
            for eid in ("e1", "e1", "e1", "e2")
        ]
        other = await sink.post("/hooks/h2", headers={"Webhook-Id": "e1"})
        summary = (await sink.get("/hooks/h1")).json()
    assert statuses == [503, 200, 200, 200]
    assert other.status_code == 200
    assert (summary["received"], summary["effects"], summary["duplicates"]) == (4, 2, 1)
