"""Transfers: one Spanner read-write transaction per transfer, made safe to retry with an
``Idempotency-Key`` (semantics of the IETF httpapi draft).

Inside the transaction: look the key up (a stored key with the same request hash replays the
stored response; with another hash it is a 422), read both accounts, refuse an overdraft,
debit and credit with new versions, record the transfer, the key with its response, and the
``transfer.committed`` event in the Outbox. Spanner's serializability makes the key check and
the money movement one atomic step: however many clients race with the same key, at most one
transfer commits; the others abort, retry, find the key and replay.

"In flight" (409) is tracked per process: a duplicate arriving at the instance still working on
the first request is told to retry later. A duplicate reaching *another* instance meanwhile
waits on Spanner's locks instead, then replays — the same outcome a client would get after the
409, without a second table write per transfer to share in-flight state across instances.

Only committed transfers are remembered: a refused request (unknown account, overdraft) writes
nothing, so the client may retry the same key once the cause is fixed. Keys expire after a day
(the table's row deletion policy).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from google.cloud import spanner
from google.cloud.spanner_v1 import KeySet

from caplab.core.timestamps import rfc3339
from services.ledger.models import TransferIn
from services.ledger.store import LedgerStore, account_not_found
from services.shared import idempotency
from services.shared.events import TRANSFER_COMMITTED, TransferEvent
from services.shared.problems import Problem

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class TransferResult:
    status: int
    body: dict[str, Any]
    replayed: bool


class Transfers:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.in_flight = idempotency.InFlightKeys()

    def execute(self, key: str, request: TransferIn) -> TransferResult:
        digest = idempotency.request_hash(request.model_dump(by_alias=True))
        with self.in_flight.claim(key):
            outcome, transaction = self.store.runner.run(self._apply, key, digest, request)
        if isinstance(outcome, TransferResult):
            return outcome
        outcome["commit_timestamp"] = rfc3339(transaction.committed)
        return TransferResult(201, outcome, replayed=False)

    def _apply(
        self, transaction: Any, key: str, digest: str, request: TransferIn
    ) -> tuple[TransferResult | dict[str, Any], Any]:
        stored = list(
            transaction.read(
                "IdempotencyKeys",
                ("RequestHash", "ResponseStatus", "ResponseBody", "CreatedAt"),
                KeySet(keys=[[key]]),
            )
        )
        if stored:
            stored_hash, status, body, created_at = stored[0]
            if stored_hash != digest:
                raise idempotency.reused()
            replay = json.loads(body)
            replay["commit_timestamp"] = rfc3339(created_at)
            return TransferResult(status, replay, replayed=True), transaction

        source, target, amount = request.from_, request.to, request.amount_cents
        rows = {
            row[0]: row
            for row in transaction.read(
                "Accounts",
                ("AccountId", "BalanceCents", "Version", "LastWriter"),
                KeySet(keys=[[source], [target]]),
            )
        }
        if source not in rows:
            raise account_not_found(source, "body.from")
        if target not in rows:
            raise account_not_found(target, "body.to")
        _, from_balance, from_version, from_writer = rows[source]
        _, to_balance, to_version, to_writer = rows[target]
        if from_balance < amount:
            raise Problem(
                422,
                "insufficient-funds",
                f"account {source!r} holds less than {amount} cents",
                field="body.amount_cents",
            )
        if to_balance + amount > INT64_MAX:
            raise Problem(
                422,
                "balance-limit",
                f"account {target!r} cannot hold that much",
                field="body.amount_cents",
            )
        transfer_id = uuid.uuid4().hex
        event_id = uuid.uuid4().hex
        stamp = spanner.COMMIT_TIMESTAMP
        new_from = (source, from_balance - amount, from_version + 1, stamp, transfer_id)
        new_to = (target, to_balance + amount, to_version + 1, stamp, transfer_id)
        transaction.update(
            "Accounts",
            ("AccountId", "BalanceCents", "Version", "UpdatedAt", "LastWriter"),
            [new_from, new_to],
        )
        transaction.insert(
            "Transfers",
            (
                "TransferId",
                "FromAccount",
                "ToAccount",
                "AmountCents",
                "FromVersion",
                "ToVersion",
                "CommittedAt",
            ),
            [
                (
                    transfer_id,
                    source,
                    target,
                    amount,
                    from_version + 1,
                    to_version + 1,
                    spanner.COMMIT_TIMESTAMP,
                )
            ],
        )
        transaction.insert(
            "Outbox",
            ("EventId", "EventType", "OrderingKey", "Payload", "CommittedAt"),
            [
                (
                    event_id,
                    TRANSFER_COMMITTED,
                    source,
                    TransferEvent(
                        event_id=event_id,
                        transfer_id=transfer_id,
                        from_account=source,
                        to_account=target,
                        amount_cents=amount,
                        from_version=from_version + 1,
                        to_version=to_version + 1,
                    )
                    .to_json()
                    .decode(),
                    spanner.COMMIT_TIMESTAMP,
                )
            ],
        )
        body = {
            "transfer_id": transfer_id,
            "from": source,
            "to": target,
            "amount_cents": amount,
            "from_version": from_version + 1,
            "to_version": to_version + 1,
            "from_balance_cents": from_balance - amount,
            "to_balance_cents": to_balance + amount,
            "from_previous_writer": from_writer,
            "to_previous_writer": to_writer,
        }
        transaction.insert(
            "IdempotencyKeys",
            ("IdempotencyKey", "RequestHash", "ResponseStatus", "ResponseBody", "CreatedAt"),
            [(key, digest, 201, json.dumps(body), spanner.COMMIT_TIMESTAMP)],
        )
        return body, transaction
