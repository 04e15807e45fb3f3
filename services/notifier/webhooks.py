"""Where each account wants its events delivered: the Spanner table ``Webhooks``.

Reads are single-use strong snapshot reads (a registration must be seen by the next event);
writes are one-mutation read-write transactions through the shared transaction runner.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.cloud.spanner_v1 import COMMIT_TIMESTAMP
from google.cloud.spanner_v1.keyset import KeySet

from services.shared.transactions import TransactionRunner

TABLE = "Webhooks"


class WebhookStore:
    def __init__(self, runner: TransactionRunner) -> None:
        self.runner = runner
        self.database = runner.database

    def lookup(self, accounts: Iterable[str]) -> dict[str, str]:
        """Account -> webhook URL, for those of ``accounts`` that registered one."""
        keys = [[account] for account in dict.fromkeys(accounts)]
        with self.database.snapshot() as snapshot:
            rows = snapshot.read(
                TABLE, ("AccountId", "Url"), KeySet(keys=keys), timeout=self.runner.timeout
            )
            return {account: url for account, url in rows}

    def register(self, account: str, url: str) -> None:
        def upsert(transaction: Any) -> None:
            transaction.insert_or_update(
                TABLE, ("AccountId", "Url", "UpdatedAt"), [(account, url, COMMIT_TIMESTAMP)]
            )

        self.runner.run(upsert)

    def unregister(self, account: str) -> None:
        def delete(transaction: Any) -> None:
            transaction.delete(TABLE, KeySet(keys=[[account]]))

        self.runner.run(delete)
