"""The ``transfer.committed`` event, declared once: the ledger writes it to the Outbox inside
the transfer's transaction, the relay publishes it on ``transfer-events``, consumers decode it.

Data is UTF-8 JSON::

    {"event_id", "type": "transfer.committed", "transfer_id", "from", "to", "amount_cents",
     "committed_at" (RFC 3339, UTC), "from_version", "to_version"}

with attributes ``event_id``, ``event_type`` and ``committed_at`` and the ``from`` account as
ordering key. The wire fields are the dataclasses' fields, in order (``from_account`` and
``to_account`` travel as ``from`` and ``to``): adding a field to :class:`TransferEvent` adds
it everywhere. The commit timestamp is unknown until the transaction commits, so the Outbox
payload is a :class:`TransferEvent` and the relay publishes it as a
:class:`TransferCommitted` with the row's ``CommittedAt`` (the transfer's own commit
timestamp).

Consumers decode with :meth:`TransferCommitted.from_json`, which raises
:class:`UndecodableEvent` for anything that does not follow the contract: such a message is a
poison message, and retrying it can never succeed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from caplab.core.timestamps import parse_rfc3339, rfc3339

TRANSFER_COMMITTED = "transfer.committed"
_WIRE_NAMES = {"from_account": "from", "to_account": "to"}


class UndecodableEvent(ValueError):
    """The payload is not a ``transfer.committed`` event (the message is poison)."""


@dataclass(frozen=True)
class TransferEvent:
    """A transfer's event as the Outbox stores it: everything but the commit timestamp."""

    event_id: str
    transfer_id: str
    from_account: str
    to_account: str
    amount_cents: int
    from_version: int
    to_version: int

    @property
    def ordering_key(self) -> str:
        return self.from_account

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": TRANSFER_COMMITTED}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            body[_WIRE_NAMES.get(field.name, field.name)] = (
                rfc3339(value) if isinstance(value, datetime) else value
            )
        return body

    @classmethod
    def from_dict(cls, body: object) -> Self:
        """The event in ``body``; anything off-contract raises :class:`UndecodableEvent`."""
        if not isinstance(body, dict):
            raise UndecodableEvent("event is not a JSON object")
        if body.get("type") != TRANSFER_COMMITTED:
            raise UndecodableEvent(f"unexpected event type {body.get('type')!r}")
        decode = {"int": _integer, "datetime": _timestamp, "str": _text}
        event = cls(
            **{
                field.name: decode[str(field.type)](body, _WIRE_NAMES.get(field.name, field.name))
                for field in dataclasses.fields(cls)
            }
        )
        if event.amount_cents <= 0:
            raise UndecodableEvent("amount_cents must be positive")
        return event

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        try:
            body = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UndecodableEvent(str(error)) from error
        return cls.from_dict(body)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    def committed(self, at: datetime) -> TransferCommitted:
        """The published event: this one with its commit timestamp."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TransferEvent)}
        return TransferCommitted(**values, committed_at=at)


@dataclass(frozen=True)
class TransferCommitted(TransferEvent):
    """The published event (what consumers decode)."""

    committed_at: datetime

    def attributes(self) -> dict[str, str]:
        return message_attributes(self.event_id, TRANSFER_COMMITTED, self.committed_at)


def message_attributes(event_id: str, event_type: str, committed_at: datetime) -> dict[str, str]:
    """The Pub/Sub attributes every published event carries, whatever its type."""
    return {"event_id": event_id, "event_type": event_type, "committed_at": rfc3339(committed_at)}


def _text(body: dict[str, object], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise UndecodableEvent(f"{key!r} must be a non-empty string")
    return value


def _integer(body: dict[str, object], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UndecodableEvent(f"{key!r} must be an integer")
    return value


def _timestamp(body: dict[str, object], key: str) -> datetime:
    try:
        return parse_rfc3339(_text(body, key))
    except ValueError as error:
        raise UndecodableEvent(f"{key!r}: {error}") from error
