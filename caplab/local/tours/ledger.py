"""A short scripted tour of the ledger for ``make demo``: ``run(console, base_url)``.

Creates two accounts, moves money with an idempotency key (and replays it), then reads the
payer's balance in every consistency mode so the CP/AP trade is on screen: strong sees the
transfer, exact staleness shows the version from before it, cached serves its entry until the
transfer event (moved by the outbox relay, pushed by Pub/Sub) invalidates it. It needs the
ledger at ``base_url``; the relay (``caplab service relay``) should run for the last step.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

STALE_BY = "1s"


def run(console: Console, base_url: str, invalidation_wait: float = 10.0) -> None:
    suffix = uuid.uuid4().hex[:6]
    payer, payee = f"alice-{suffix}", f"bob-{suffix}"
    with httpx.Client(base_url=base_url, timeout=30) as http:
        console.rule("ledger: accounts")
        for account, owner, cents in ((payer, "Alice", 10_000), (payee, "Bob", 0)):
            created = _ok(http.post(
                "/v1/accounts", json={"id": account, "owner": owner, "balance_cents": cents}
            ))  # fmt: skip
            console.print(f"created {account}: {created['balance_cents']} cents, version 1")
        time.sleep(1.5)  # so a read 1 s in the past still finds the opening balance
        cached_before = _ok(http.get(f"/v1/accounts/{payer}", params={"consistency": "cached"}))
        console.print(f"cached read of {payer} fills the cache ({cached_before['served_by']})")

        console.rule("ledger: a transfer, sent twice with one Idempotency-Key")
        key = uuid.uuid4().hex
        body = {"from": payer, "to": payee, "amount_cents": 2_500}
        first = http.post("/v1/transfers", json=body, headers={"Idempotency-Key": key})
        again = http.post("/v1/transfers", json=body, headers={"Idempotency-Key": key})
        transfer = _ok(first)
        console.print(
            f"{first.status_code}: transfer {transfer['transfer_id'][:8]}… committed at "
            f"{transfer['commit_timestamp']}, {payer} now version {transfer['from_version']}"
        )
        console.print(
            f"{again.status_code} again, Idempotent-Replayed: "
            f"{again.headers.get('idempotent-replayed')}, same transfer: "
            f"{_ok(again)['transfer_id'] == transfer['transfer_id']}"
        )

        console.rule(f"ledger: reading {payer} in each consistency mode")
        table = Table()
        for column in ("consistency", "balance", "version", "served by", "read timestamp",
                       "staleness", "cache age"):  # fmt: skip
            table.add_column(column)
        reads: list[tuple[str, dict[str, str]]] = [
            ("strong", {"consistency": "strong"}),
            ("exact", {"consistency": "exact", "staleness": STALE_BY}),
            ("bounded", {"consistency": "bounded", "staleness": STALE_BY}),
            ("cached", {"consistency": "cached"}),
        ]
        for _, params in reads:
            _row(table, _ok(http.get(f"/v1/accounts/{payer}", params=params)))
        deadline = time.monotonic() + invalidation_wait
        latest = _ok(http.get(f"/v1/accounts/{payer}", params={"consistency": "cached"}))
        while latest["version"] < transfer["from_version"] and time.monotonic() < deadline:
            time.sleep(0.2)
            latest = _ok(http.get(f"/v1/accounts/{payer}", params={"consistency": "cached"}))
        _row(table, latest, label="cached, after the event")
        console.print(table)
        if latest["version"] < transfer["from_version"]:
            console.print("[yellow]no invalidation arrived: is `caplab service relay` running?")
        console.print(
            "strong pays a leader round trip and sees the transfer; exact staleness reads the "
            "past (the older version) from any replica; cached answers from memory until the "
            "transfer event invalidates it."
        )
        snapshot = _ok(http.get("/v1/snapshot", params={"accounts": f"{payer},{payee}"}))
        console.print(
            f"snapshot at {snapshot['read_timestamp']}: total {snapshot['total_cents']} cents "
            "(money is conserved)"
        )


def _ok(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    return response.json()


def _row(table: Table, read: dict[str, Any], label: str | None = None) -> None:
    table.add_row(
        label or read["consistency"],
        str(read["balance_cents"]),
        str(read["version"]),
        read["served_by"],
        read["read_timestamp"],
        read["staleness"] or "-",
        read["cache_age"] or "-",
    )
