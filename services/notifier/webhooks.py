"""Where each account wants its events delivered: the Spanner table ``Webhooks``.

Reads are single-use strong snapshot reads (a registration must be seen by the next event);
writes are one-mutation read-write transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database

TABLE = "Webhooks"
_ABORT_RETRY_DELAY = 0.01
"""Seconds between retries of an aborted transaction (the emulator aborts concurrent ones;
the client's default sleeps ``2**attempt`` s)."""


def lookup(database: Database, accounts: Iterable[str]) -> dict[str, str]:
    """Account -> webhook URL, for those of ``accounts`` that registered one."""
    from google.cloud.spanner_v1.keyset import KeySet

    keys = [[account] for account in dict.fromkeys(accounts)]
    with database.snapshot() as snapshot:
        rows = snapshot.read(TABLE, ("AccountId", "Url"), KeySet(keys=keys))
        return {account: url for account, url in rows}


def register(database: Database, account: str, url: str) -> None:
    from google.cloud.spanner_v1 import COMMIT_TIMESTAMP

    def upsert(transaction: object) -> None:
        transaction.insert_or_update(  # type: ignore[attr-defined]
            TABLE, ("AccountId", "Url", "UpdatedAt"), [(account, url, COMMIT_TIMESTAMP)]
        )

    database.run_in_transaction(upsert, default_retry_delay=_ABORT_RETRY_DELAY)


def unregister(database: Database, account: str) -> None:
    from google.cloud.spanner_v1.keyset import KeySet

    def delete(transaction: object) -> None:
        transaction.delete(TABLE, KeySet(keys=[[account]]))  # type: ignore[attr-defined]

    database.run_in_transaction(delete, default_retry_delay=_ABORT_RETRY_DELAY)
