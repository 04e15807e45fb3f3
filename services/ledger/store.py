"""Spanner access for the ledger: account creation, reads at a chosen timestamp bound,
multi-account snapshots, transfer look-ups.

Every read reports the timestamp Spanner read at (``return_read_timestamp``), which is what
lets a caller — and the load lab's checkers — place the answer in the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from google.api_core.exceptions import FailedPrecondition, NotFound
from google.cloud import spanner
from google.cloud.spanner_v1 import KeySet

from services.ledger.models import Consistency
from services.shared.problems import Problem, invalid_field
from services.shared.transactions import TransactionRunner

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database, SnapshotCheckout

ACCOUNT_COLUMNS = ("AccountId", "Owner", "BalanceCents", "Version", "UpdatedAt", "LastWriter")
CREATED = "create"
"""The writer recorded for an account's first version."""


@dataclass(frozen=True)
class AccountRow:
    account: str
    owner: str
    balance_cents: int
    version: int
    updated_at: datetime
    last_writer: str | None = None  # None: written before writers were recorded

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AccountRow:
        return cls(row[0], row[1], row[2], row[3], row[4], row[5])


@dataclass(frozen=True)
class AccountsRead:
    rows: dict[str, AccountRow]
    read_timestamp: datetime


def account_not_found(account: str, field: str) -> Problem:
    return Problem(404, "account-not-found", f"account {account!r} does not exist", field=field)


class LedgerStore:
    """The runner's database serves writes and strong reads (the leader); ``replica`` serves
    exact and bounded-staleness reads (the same database unless the lab models a separate
    link)."""

    def __init__(self, runner: TransactionRunner, replica: Database | None = None):
        self.runner = runner
        self.database = runner.database
        self.replica = replica or runner.database
        self.timeout = runner.timeout

    def _snapshot(self, consistency: Consistency, staleness: timedelta) -> SnapshotCheckout:
        if consistency is Consistency.EXACT:
            return self.replica.snapshot(exact_staleness=staleness)
        if consistency is Consistency.BOUNDED:
            return self.replica.snapshot(max_staleness=staleness)
        return self.database.snapshot()

    def read_accounts(
        self, accounts: Sequence[str], consistency: Consistency, staleness: timedelta
    ) -> AccountsRead:
        """All ``accounts`` read at one timestamp (strong, exact or bounded).

        A stale read whose timestamp falls before the table existed (a young database and a
        long staleness) or behind the version retention is the caller's choice of timestamp,
        answered as a 422 on ``query.staleness``, not a server error."""
        try:
            with self._snapshot(consistency, staleness) as snapshot:
                result = snapshot.read(
                    "Accounts",
                    ACCOUNT_COLUMNS,
                    KeySet(keys=[[account] for account in accounts]),
                    timeout=self.timeout,
                )
                rows = {row[0]: AccountRow.from_row(row) for row in result}
                # proto-plus hands the protobuf Timestamp over as a DatetimeWithNanoseconds.
                read_timestamp = cast(datetime | None, snapshot._transaction_read_timestamp)
        except (NotFound, FailedPrecondition) as error:
            if consistency is Consistency.STRONG:
                raise
            raise invalid_field(
                "query.staleness",
                f"nothing can be read that far back: {error.message}",
            ) from error
        if read_timestamp is None:  # pragma: no cover - return_read_timestamp is always set
            raise RuntimeError("Spanner returned no read timestamp")
        return AccountsRead(rows, read_timestamp)

    def create_account(
        self, account: str, owner: str, balance_cents: int
    ) -> tuple[AccountRow, bool]:
        """Insert the account at version 1. Creating it again is idempotent: an existing
        account with the same owner is returned as it is now (``created`` false; its balance may
        have moved since); one with another owner is a 409."""

        def create(transaction: Any) -> tuple[AccountRow | None, Any]:
            existing = list(transaction.read("Accounts", ACCOUNT_COLUMNS, KeySet(keys=[[account]])))
            if existing:
                return AccountRow.from_row(existing[0]), transaction
            transaction.insert(
                "Accounts",
                (
                    "AccountId",
                    "Owner",
                    "BalanceCents",
                    "Version",
                    "CreatedAt",
                    "UpdatedAt",
                    "LastWriter",
                ),
                [
                    (
                        account,
                        owner,
                        balance_cents,
                        1,
                        spanner.COMMIT_TIMESTAMP,
                        spanner.COMMIT_TIMESTAMP,
                        CREATED,
                    )
                ],
            )
            return None, transaction

        existing, transaction = self.runner.run(create)
        if existing is None:
            row = AccountRow(account, owner, balance_cents, 1, transaction.committed, CREATED)
            return row, True
        if existing.owner != owner:
            raise Problem(
                409,
                "account-exists",
                f"account {account!r} already exists with another owner",
                field="body.id",
            )
        return existing, False

    def read_transfer(self, transfer_id: str) -> list[Any] | None:
        columns = (
            "TransferId", "FromAccount", "ToAccount", "AmountCents",
            "FromVersion", "ToVersion", "CommittedAt",
        )  # fmt: skip
        with self.database.snapshot() as snapshot:
            rows = list(
                snapshot.read(
                    "Transfers", columns, KeySet(keys=[[transfer_id]]), timeout=self.timeout
                )
            )
        return rows[0] if rows else None

    def ping(self) -> None:
        """Raises unless Spanner answers a query (the readiness probe)."""
        with self.database.snapshot() as snapshot:
            list(snapshot.execute_sql("SELECT 1", timeout=self.timeout))
