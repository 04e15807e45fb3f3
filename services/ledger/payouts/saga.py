"""The payout saga's persisted state machine, one Spanner read-write transaction per step.

::

    POST /v1/payouts ──▶ HELD ──bank accepted──▶ SETTLED
                          │  └─bank failed, attempts left─▶ HELD (a BANK_FAILED step recorded)
                          └──bank failed on the last attempt──▶ COMPENSATED

- **hold** (:meth:`PayoutStore.hold`): checks the ``Idempotency-Key`` (same key and body:
  the existing payout; same key, other body: 422), refuses an overdraft, debits the account
  (new version) and inserts the payout in ``HELD`` with its first step — one transaction, so
  the money is either on the account or on the hold, never on both or neither.
- **settle** / **compensate**: each runs only from ``HELD`` (reading the state in the same
  transaction), so a redelivered task, or a settle racing a compensate, changes nothing the
  second time: every step is idempotent, and exactly one of them ends the saga.
  Compensation credits the held amount back to the account (new version).

Money while a payout is held sits on the ``Payouts`` row: the ledger's invariant is
``sum(balances) + sum(held payouts)`` constant; a settled payout has left the ledger.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from google.cloud import spanner
from google.cloud.spanner_v1 import KeySet

from services.shared.problems import Problem
from services.shared.transactions import TransactionRunner

if TYPE_CHECKING:
    pass

PAYOUT_COLUMNS = ("PayoutId", "AccountId", "AmountCents", "BankUrl", "State", "RequestHash")


class PayoutState(enum.StrEnum):
    HELD = "held"
    BANK_FAILED = "bank_failed"
    """Recorded in the history only: the payout itself stays HELD until it ends."""
    SETTLED = "settled"
    COMPENSATED = "compensated"


@dataclass(frozen=True)
class Step:
    step: int
    state: str
    detail: str
    at: datetime


@dataclass(frozen=True)
class Payout:
    payout_id: str
    account: str
    amount_cents: int
    bank_url: str
    state: PayoutState
    history: tuple[Step, ...] = ()

    @classmethod
    def from_row(cls, row: list[Any], history: tuple[Step, ...] = ()) -> Payout:
        return cls(row[0], row[1], row[2], row[3], PayoutState(row[4]), history)


def request_hash(account: str, amount_cents: int, bank_url: str) -> str:
    canonical = json.dumps([account, amount_cents, bank_url])
    return hashlib.sha256(canonical.encode()).hexdigest()


class PayoutStore:
    def __init__(self, runner: TransactionRunner) -> None:
        self.database = runner.database
        self.timeout = runner.timeout
        self._run = runner.run

    def hold(self, key: str, account: str, amount_cents: int, bank_url: str) -> tuple[str, bool]:
        """Step 1. The payout id, and whether this call created it (false: a replay)."""
        digest = request_hash(account, amount_cents, bank_url)

        def apply(transaction: Any) -> tuple[str, bool]:
            existing = list(
                transaction.read(
                    "Payouts",
                    ("PayoutId", "RequestHash"),
                    KeySet(keys=[[key]]),
                    index="PayoutsByIdempotencyKey",
                )
            )
            if existing:
                payout_id, stored_hash = existing[0]
                if stored_hash != digest:
                    raise Problem(
                        422,
                        "idempotency-key-reused",
                        "this Idempotency-Key was used with a different request body",
                        field="header.Idempotency-Key",
                    )
                return payout_id, False
            rows = list(
                transaction.read("Accounts", ("BalanceCents", "Version"), KeySet(keys=[[account]]))
            )
            if not rows:
                raise Problem(
                    404, "account-not-found", f"account {account!r} does not exist",
                    field="body.account",
                )  # fmt: skip
            balance, version = rows[0]
            if balance < amount_cents:
                raise Problem(
                    422,
                    "insufficient-funds",
                    f"account {account!r} holds less than {amount_cents} cents",
                    field="body.amount_cents",
                )
            payout_id = uuid.uuid4().hex
            _move(
                transaction,
                account,
                balance - amount_cents,
                version + 1,
                f"payout:{payout_id}:held",
            )
            transaction.insert(
                "Payouts",
                (*PAYOUT_COLUMNS, "IdempotencyKey", "CreatedAt", "UpdatedAt"),
                [
                    (
                        payout_id, account, amount_cents, bank_url, PayoutState.HELD.value,
                        digest, key, spanner.COMMIT_TIMESTAMP, spanner.COMMIT_TIMESTAMP,
                    )
                ],
            )  # fmt: skip
            _record(transaction, payout_id, 1, PayoutState.HELD, f"{amount_cents} cents held")
            return payout_id, True

        return self._run(apply)

    def settle(self, payout_id: str, detail: str) -> PayoutState:
        """HELD -> SETTLED; the state after the call (unchanged unless it was HELD)."""
        return self._end(payout_id, PayoutState.SETTLED, detail)

    def compensate(self, payout_id: str, detail: str) -> PayoutState:
        """HELD -> COMPENSATED, crediting the held amount back; the state after the call."""
        return self._end(payout_id, PayoutState.COMPENSATED, detail)

    def record_failure(self, payout_id: str, detail: str) -> None:
        """A failed bank attempt, added to the history of a payout still HELD."""

        def apply(transaction: Any) -> None:
            payout, steps = _read_for_update(transaction, payout_id)
            if payout.state is PayoutState.HELD:
                _record(transaction, payout_id, steps + 1, PayoutState.BANK_FAILED, detail)

        self._run(apply)

    def _end(self, payout_id: str, final: PayoutState, detail: str) -> PayoutState:
        def apply(transaction: Any) -> PayoutState:
            payout, steps = _read_for_update(transaction, payout_id)
            if payout.state is not PayoutState.HELD:
                return payout.state
            if final is PayoutState.COMPENSATED:
                balance, version = next(
                    iter(
                        transaction.read(
                            "Accounts",
                            ("BalanceCents", "Version"),
                            KeySet(keys=[[payout.account]]),
                        )
                    )
                )
                _move(
                    transaction,
                    payout.account,
                    balance + payout.amount_cents,
                    version + 1,
                    f"payout:{payout_id}:compensated",
                )
            transaction.update(
                "Payouts",
                ("PayoutId", "State", "UpdatedAt"),
                [(payout_id, final.value, spanner.COMMIT_TIMESTAMP)],
            )
            _record(transaction, payout_id, steps + 1, final, detail)
            return final

        return self._run(apply)

    def read(self, payout_id: str) -> Payout | None:
        """The payout and its history, in one single-use strong read (the emulator forgets a
        multi-use read-only transaction as soon as another transaction starts)."""
        with self.database.snapshot() as snapshot:
            rows = list(
                snapshot.execute_sql(
                    _READ_WITH_HISTORY,
                    params={"payout_id": payout_id},
                    param_types={"payout_id": spanner.param_types.STRING},
                    timeout=self.timeout,
                )
            )
        if not rows:
            return None
        history = tuple(Step(*row[6:]) for row in rows if row[6] is not None)
        return Payout.from_row(rows[0][:6], history)


_READ_WITH_HISTORY = """
SELECT p.PayoutId, p.AccountId, p.AmountCents, p.BankUrl, p.State, p.RequestHash,
       s.Step, s.State, s.Detail, s.RecordedAt
FROM Payouts AS p LEFT JOIN PayoutSteps AS s ON s.PayoutId = p.PayoutId
WHERE p.PayoutId = @payout_id
ORDER BY s.Step
"""


def _prefix_range(payout_id: str) -> Any:
    from google.cloud.spanner_v1.keyset import KeyRange

    return KeyRange(start_closed=[payout_id], end_closed=[payout_id])


def _read_for_update(transaction: Any, payout_id: str) -> tuple[Payout, int]:
    rows = list(transaction.read("Payouts", PAYOUT_COLUMNS, KeySet(keys=[[payout_id]])))
    if not rows:
        raise Problem(404, "payout-not-found", f"no payout {payout_id!r}")
    steps = list(
        transaction.read("PayoutSteps", ("Step",), KeySet(ranges=[_prefix_range(payout_id)]))
    )
    return Payout.from_row(rows[0]), len(steps)


def _move(transaction: Any, account: str, balance: int, version: int, writer: str) -> None:
    """The account's new balance and version, recording ``writer`` (the payout step) as the
    operation that produced that version."""
    transaction.update(
        "Accounts",
        ("AccountId", "BalanceCents", "Version", "UpdatedAt", "LastWriter"),
        [(account, balance, version, spanner.COMMIT_TIMESTAMP, writer)],
    )


def _record(transaction: Any, payout_id: str, step: int, state: PayoutState, detail: str) -> None:
    transaction.insert(
        "PayoutSteps",
        ("PayoutId", "Step", "State", "Detail", "RecordedAt"),
        [(payout_id, step, state.value, detail[:1024], spanner.COMMIT_TIMESTAMP)],
    )
