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

from services.shared.timestamps import rfc3339

TOPIC = "transfer-events"
EVENT_TYPE = "transfer.committed"


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
    """The Pub/Sub message for an Outbox row."""
    event: dict[str, Any] = json.loads(payload)
    committed = rfc3339(committed_at)
    event["committed_at"] = committed
    return Message(
        data=json.dumps(event, separators=(",", ":")).encode(),
        attributes={
            "event_id": event["event_id"],
            "event_type": event["type"],
            "committed_at": committed,
        },
        ordering_key=event["from"],
    )
