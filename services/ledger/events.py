"""The ``transfer.committed`` event: written to the Outbox inside the transfer's transaction,
published by the relay to ``transfer-events``.

The commit timestamp is unknown until the transaction commits, so the Outbox payload is stored
without it and the relay adds ``committed_at`` from the row's ``CommittedAt`` column (written
with ``PENDING_COMMIT_TIMESTAMP()``, i.e. the transfer's own commit timestamp).

Published message: data = UTF-8 JSON ``{"event_id", "type", "transfer_id", "from", "to",
"amount_cents", "committed_at", "from_version", "to_version"}``; attributes ``event_id``,
``event_type``, ``committed_at``; ordering key = the ``from`` account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.shared.events import TRANSFER_COMMITTED, TransferCommitted

TOPIC = "transfer-events"
EVENT_TYPE = TRANSFER_COMMITTED


def outbox_payload(
    event_id: str,
    transfer_id: str,
    source: str,
    target: str,
    amount_cents: int,
    from_version: int,
    to_version: int,
) -> str:
    """The Outbox ``Payload`` column: the event without its commit timestamp."""
    return json.dumps(
        {
            "event_id": event_id,
            "type": EVENT_TYPE,
            "transfer_id": transfer_id,
            "from": source,
            "to": target,
            "amount_cents": amount_cents,
            "from_version": from_version,
            "to_version": to_version,
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Message:
    data: bytes
    attributes: dict[str, str]
    ordering_key: str


def message(payload: str, committed_at: datetime) -> Message:
    """The Pub/Sub message for an Outbox row (the contract: ``services.shared.events``)."""
    stored: dict[str, Any] = json.loads(payload)
    event = TransferCommitted(
        event_id=stored["event_id"],
        transfer_id=stored["transfer_id"],
        from_account=stored["from"],
        to_account=stored["to"],
        amount_cents=stored["amount_cents"],
        committed_at=committed_at,
        from_version=stored["from_version"],
        to_version=stored["to_version"],
    )
    return Message(event.to_json(), event.attributes(), ordering_key=event.from_account)
