"""The payout saga's persisted state machine: one Spanner read-write transaction per step, each
re-reading the payout's state inside the transaction before it acts.

::

    POST /v1/payouts ─▶ held ─begin_attempt─▶ paying ─bank paid (2xx)──────────▶ settled
                         ▲                      │    ─bank refused (422)───────▶ compensated
                         │                      └─ anything else ─▶ reconciling
                         │                                            │ ask the bank
                         └──── status 404, attempts left ─────────────┤ paid ─▶ settled
                                                                      │ refused ─▶ compensated
              status 404, attempts spent, arrival window passed ──────┴─▶ compensated

- **hold** (:meth:`PayoutStore.hold`): checks the ``Idempotency-Key`` (same key and body: the
  existing payout; same key, other body: 422), refuses an overdraft, debits the account (new
  version) and inserts the payout in ``held`` — one transaction, so the money is either on the
  account or on the hold, never on both or neither. The ``held`` row is the committed intent to
  call the bank: the sweeper re-enqueues every open payout nobody has touched for a while.
- **begin_attempt**: ``held`` → ``paying``, counting the attempt and stamping
  ``LastAttemptAt`` *before* the bank is called (a write-ahead): a process killed during the
  call leaves ``paying``, and the next delivery asks the bank before paying again. A delivery
  that finds the payout ``paying`` does not call the bank a second time.
- **settle** / **compensate**: each runs only from an open state (re-read in the
  transaction), so a redelivered task, or two deliveries racing, change nothing the second
  time: exactly one of them ends the saga. Compensation credits the held amount back to the
  account (new version); compensating after a "never received" also requires that no attempt
  began since the bank was asked.
- **record**: a step that changes no money (``bank_unknown``, ``status_not_found``...), moving
  between open states only.

Money while a payout is open sits on the ``Payouts`` row: the ledger's invariant is
``sum(balances) + sum(open payouts)`` = the money paid in minus the money settled out.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.cloud import spanner
from google.cloud.spanner_v1 import KeySet

from services.shared import idempotency
from services.shared.problems import Problem
from services.shared.transactions import TransactionRunner


class PayoutState(enum.StrEnum):
    HELD = "held"
    """The amount is off the account; the bank has not been asked, or said it never got it."""
    PAYING = "paying"
    """A call to the bank began (or a process died during one): the bank may have it."""
    RECONCILING = "reconciling"
    """The bank's answer is unknown (timeout, 5xx, 409...) or its status query failed: the
    saga asks the bank before doing anything else, on later deliveries."""
    SETTLED = "settled"
    """The bank paid: the money has left the ledger."""
    COMPENSATED = "compensated"
    """The bank refused, or never received it: the amount is back on the account."""

    @property
    def final(self) -> bool:
        return self in (PayoutState.SETTLED, PayoutState.COMPENSATED)


OPEN_STATES = (PayoutState.HELD, PayoutState.PAYING, PayoutState.RECONCILING)


@dataclass(frozen=True)
class Step:
    step: int
    event: str
    state: PayoutState
    detail: str
    at: datetime


@dataclass(frozen=True)
class Payout:
    payout_id: str
    account: str
    amount_cents: int
    state: PayoutState
    attempts: int
    last_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    read_at: datetime
    """Spanner's clock when this was read (to measure time since the last attempt)."""
    history: tuple[Step, ...] = ()


def payout_not_found(payout_id: str) -> Problem:
    return Problem(404, "payout-not-found", f"no payout {payout_id!r}")


class PayoutStore:
    def __init__(self, runner: TransactionRunner) -> None:
        self.database = runner.database
        self.timeout = runner.timeout
        self._run = runner.run

    def hold(self, key: str, digest: str, account: str, amount_cents: int) -> tuple[str, bool]:
        """Step 1: debit ``account`` and open the payout. Its id, and whether this call
        created it (false: a replay of ``key``)."""

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
                    raise idempotency.reused()
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
            _move(transaction, account, balance - amount_cents, version + 1, payout_id, "held")
            transaction.insert(
                "Payouts",
                ("PayoutId", "AccountId", "AmountCents", "State", "BankAttempts",
                 "IdempotencyKey", "RequestHash", "CreatedAt", "UpdatedAt"),
                [(payout_id, account, amount_cents, PayoutState.HELD.value, 0, key, digest,
                  spanner.COMMIT_TIMESTAMP, spanner.COMMIT_TIMESTAMP)],
            )  # fmt: skip
            _step(transaction, payout_id, 1, "held", PayoutState.HELD, f"{amount_cents} cents held")
            return payout_id, True

        return self._run(apply)

    def begin_attempt(self, payout_id: str, max_attempts: int) -> int | None:
        """``held`` -> ``paying``: the number of the bank call about to be made, committed
        before it is made; ``None`` (nothing written) unless the payout is ``held`` with
        attempts left."""

        def apply(transaction: Any) -> int | None:
            current = _current(transaction, payout_id)
            if current.state is not PayoutState.HELD or current.attempts >= max_attempts:
                return None
            attempt = current.attempts + 1
            transaction.update(
                "Payouts",
                ("PayoutId", "State", "BankAttempts", "LastAttemptAt", "UpdatedAt"),
                [(payout_id, PayoutState.PAYING.value, attempt, spanner.COMMIT_TIMESTAMP,
                  spanner.COMMIT_TIMESTAMP)],
            )  # fmt: skip
            detail = f"calling the bank: attempt {attempt} of {max_attempts}"
            step = current.steps + 1
            _step(transaction, payout_id, step, "bank_call", PayoutState.PAYING, detail)
            return attempt

        return self._run(apply)

    def record(
        self, payout_id: str, event: str, detail: str, state: PayoutState | None = None
    ) -> PayoutState:
        """Add a step to an open payout, moving it to the open ``state`` if given; the state
        after the call (a final state is left as it is, and nothing is written)."""
        if state is not None and state.final:
            raise ValueError("settle() and compensate() end a payout, not record()")

        def apply(transaction: Any) -> PayoutState:
            current = _current(transaction, payout_id)
            if current.state.final:
                return current.state
            after = state or current.state
            _step(transaction, payout_id, current.steps + 1, event, after, detail)
            transaction.update(
                "Payouts",
                ("PayoutId", "State", "UpdatedAt"),
                [(payout_id, after.value, spanner.COMMIT_TIMESTAMP)],
            )
            return after

        return self._run(apply)

    def settle(self, payout_id: str, detail: str) -> PayoutState:
        """Open -> ``settled`` (the bank paid: the held money leaves the ledger); the state
        after the call (unchanged if it had already ended)."""

        def apply(transaction: Any) -> PayoutState:
            current = _current(transaction, payout_id)
            if current.state.final:
                return current.state
            _end(transaction, payout_id, current.steps + 1, PayoutState.SETTLED, detail)
            return PayoutState.SETTLED

        return self._run(apply)

    def compensate(
        self, payout_id: str, detail: str, *, attempts_seen: int | None = None
    ) -> PayoutState:
        """Open -> ``compensated``, crediting the held amount back to the account; the state
        after the call. With ``attempts_seen`` (compensating a payout the bank never
        received), nothing happens if another attempt began since then."""

        def apply(transaction: Any) -> PayoutState:
            current = _current(transaction, payout_id)
            if current.state.final:
                return current.state
            if attempts_seen is not None and current.attempts != attempts_seen:
                return current.state
            balance, version = next(
                iter(
                    transaction.read(
                        "Accounts", ("BalanceCents", "Version"), KeySet(keys=[[current.account]])
                    )
                )
            )
            credited = balance + current.amount_cents
            _move(transaction, current.account, credited, version + 1, payout_id, "compensated")
            _end(transaction, payout_id, current.steps + 1, PayoutState.COMPENSATED, detail)
            return PayoutState.COMPENSATED

        return self._run(apply)

    def requeue(self, payout_id: str, stale_after: timedelta) -> int | None:
        """For the sweeper: if the payout is still open and untouched for ``stale_after``,
        record a ``requeued`` step and return its number (it names the new task, so sweepers
        racing on one payout create one task); else ``None``."""

        def apply(transaction: Any) -> int | None:
            current = _current(transaction, payout_id)
            if current.state.final or current.idle < stale_after:
                return None
            detail = f"open and untouched for {current.idle.total_seconds():.0f}s: re-enqueued"
            _step(transaction, payout_id, current.steps + 1, "requeued", current.state, detail)
            transaction.update(
                "Payouts", ("PayoutId", "UpdatedAt"), [(payout_id, spanner.COMMIT_TIMESTAMP)]
            )
            return current.steps + 1

        return self._run(apply)

    def stale(self, stale_after: timedelta, limit: int) -> list[str]:
        """Ids of open payouts untouched for ``stale_after`` (by Spanner's clock), oldest
        first."""
        with self.database.snapshot() as snapshot:
            rows = snapshot.execute_sql(
                _STALE,
                params={
                    "open": [s.value for s in OPEN_STATES],
                    "stale_ms": int(stale_after / timedelta(milliseconds=1)),
                    "limit": limit,
                },
                param_types={
                    "open": spanner.param_types.Array(spanner.param_types.STRING),
                    "stale_ms": spanner.param_types.INT64,
                    "limit": spanner.param_types.INT64,
                },
                timeout=self.timeout,
            )
            return [row[0] for row in rows]

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
        history = tuple(
            Step(row[9], row[10], PayoutState(row[11]), row[12], row[13])
            for row in rows
            if row[9] is not None
        )
        head = rows[0]
        return Payout(
            payout_id=head[0],
            account=head[1],
            amount_cents=head[2],
            state=PayoutState(head[3]),
            attempts=head[4],
            last_attempt_at=head[5],
            created_at=head[6],
            updated_at=head[7],
            read_at=head[8],
            history=history,
        )


# Steps recorded before migration m0005 have no Event, and a "bank_failed" State that left
# the payout held.
_READ_WITH_HISTORY = """
SELECT p.PayoutId, p.AccountId, p.AmountCents, p.State, p.BankAttempts, p.LastAttemptAt,
       p.CreatedAt, p.UpdatedAt, CURRENT_TIMESTAMP(),
       s.Step, COALESCE(s.Event, s.State), IF(s.State = 'bank_failed', 'held', s.State),
       s.Detail, s.RecordedAt
FROM Payouts AS p LEFT JOIN PayoutSteps AS s ON s.PayoutId = p.PayoutId
WHERE p.PayoutId = @payout_id
ORDER BY s.Step
"""

_STALE = """
SELECT PayoutId FROM Payouts@{FORCE_INDEX=PayoutsByState}
WHERE State IN UNNEST(@open)
  AND UpdatedAt < TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @stale_ms MILLISECOND)
ORDER BY UpdatedAt
LIMIT @limit
"""

_CURRENT = """
SELECT p.AccountId, p.AmountCents, p.State, p.BankAttempts,
       TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), p.UpdatedAt, MILLISECOND),
       (SELECT COALESCE(MAX(s.Step), 0) FROM PayoutSteps AS s WHERE s.PayoutId = p.PayoutId)
FROM Payouts AS p
WHERE p.PayoutId = @payout_id
"""


@dataclass(frozen=True)
class _Current:
    account: str
    amount_cents: int
    state: PayoutState
    attempts: int
    idle: timedelta
    steps: int


def _current(transaction: Any, payout_id: str) -> _Current:
    """The payout as this transaction sees it (and locks it)."""
    rows = list(
        transaction.execute_sql(
            _CURRENT,
            params={"payout_id": payout_id},
            param_types={"payout_id": spanner.param_types.STRING},
        )
    )
    if not rows:
        raise payout_not_found(payout_id)
    account, amount, state, attempts, idle_ms, steps = rows[0]
    return _Current(
        account, amount, PayoutState(state), attempts, timedelta(milliseconds=idle_ms), steps
    )


def _end(transaction: Any, payout_id: str, step: int, final: PayoutState, detail: str) -> None:
    transaction.update(
        "Payouts",
        ("PayoutId", "State", "UpdatedAt"),
        [(payout_id, final.value, spanner.COMMIT_TIMESTAMP)],
    )
    _step(transaction, payout_id, step, final.value, final, detail)


def _move(
    transaction: Any, account: str, balance: int, version: int, payout_id: str, step: str
) -> None:
    """The account's new balance and version, recording the payout step that produced that
    version as its writer (``payout:<id>:held`` or ``payout:<id>:compensated``)."""
    transaction.update(
        "Accounts",
        ("AccountId", "BalanceCents", "Version", "UpdatedAt", "LastWriter"),
        [(account, balance, version, spanner.COMMIT_TIMESTAMP, f"payout:{payout_id}:{step}")],
    )


def _step(
    transaction: Any, payout_id: str, step: int, event: str, state: PayoutState, detail: str
) -> None:
    transaction.insert(
        "PayoutSteps",
        ("PayoutId", "Step", "Event", "State", "Detail", "RecordedAt"),
        [(payout_id, step, event, state.value, detail[:1024], spanner.COMMIT_TIMESTAMP)],
    )
