"""The ``transfer.committed`` event contract, as the ledger publishes it on ``transfer-events``.

Data is UTF-8 JSON::

    {"event_id", "type": "transfer.committed", "transfer_id", "from", "to", "amount_cents",
     "committed_at" (RFC 3339, UTC), "from_version", "to_version"}

with attributes ``event_id``, ``event_type`` and ``committed_at`` and the ``from`` account as
ordering key. Consumers decode with :meth:`TransferCommitted.from_json`, which raises
:class:`UndecodableEvent` for anything that does not follow the contract: such a message is a
poison message, and retrying it can never succeed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from caplab.core.timestamps import parse_rfc3339, rfc3339

TRANSFER_COMMITTED = "transfer.committed"


class UndecodableEvent(ValueError):
    """The payload is not a ``transfer.committed`` event (the message is poison)."""


@dataclass(frozen=True)
class TransferCommitted:
    event_id: str
    transfer_id: str
    from_account: str
    to_account: str
    amount_cents: int
    committed_at: datetime
    from_version: int
    to_version: int

    @classmethod
    def from_json(cls, data: bytes) -> TransferCommitted:
        try:
            body = json.loads(data.decode("utf-8"))
            if not isinstance(body, dict):
                raise UndecodableEvent("event is not a JSON object")
            if body.get("type") != TRANSFER_COMMITTED:
                raise UndecodableEvent(f"unexpected event type {body.get('type')!r}")
            event = cls(
                event_id=_text(body, "event_id"),
                transfer_id=_text(body, "transfer_id"),
                from_account=_text(body, "from"),
                to_account=_text(body, "to"),
                amount_cents=_integer(body, "amount_cents"),
                committed_at=parse_rfc3339(_text(body, "committed_at")),
                from_version=_integer(body, "from_version"),
                to_version=_integer(body, "to_version"),
            )
        except UndecodableEvent:
            raise
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
            raise UndecodableEvent(str(error)) from error
        if event.amount_cents <= 0:
            raise UndecodableEvent("amount_cents must be positive")
        return event

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "event_id": self.event_id,
                "type": TRANSFER_COMMITTED,
                "transfer_id": self.transfer_id,
                "from": self.from_account,
                "to": self.to_account,
                "amount_cents": self.amount_cents,
                "committed_at": rfc3339(self.committed_at),
                "from_version": self.from_version,
                "to_version": self.to_version,
            },
            separators=(",", ":"),
        ).encode()

    def attributes(self) -> dict[str, str]:
        return {
            "event_id": self.event_id,
            "event_type": TRANSFER_COMMITTED,
            "committed_at": rfc3339(self.committed_at),
        }


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
