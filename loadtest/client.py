"""The lab's HTTP operations against the ledger (and the activity feed), each filling in a
:class:`~loadtest.records.Record` — never raising: every failure is an outcome."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from loadtest.pool import ClientPool
from loadtest.records import ERROR, OK, REJECTED, UNKNOWN, Record
from services.shared.durations import DurationError, parse_duration
from services.shared.timestamps import parse_rfc3339


def epoch(text: str) -> float:
    return parse_rfc3339(text).timestamp()


def _bound(text: str | None) -> float | None:
    try:
        return parse_duration(text).total_seconds() if text else None
    except DurationError:
        return None


def _problem_type(response: httpx.Response) -> str:
    try:
        return str(response.json().get("type", ""))
    except ValueError:
        return ""


class LabClient:
    """Issues one operation and records it. ``clock`` is the monotonic clock of the run."""

    def __init__(
        self,
        pool: ClientPool,
        ledger_url: str,
        activity_url: str | None = None,
        staleness: str = "2s",
        activity_limit: int = 20,
        clock: Callable[[], float] = time.monotonic,
        replica_url: str | None = None,
    ) -> None:
        self.pool = pool
        self.ledger_url = ledger_url.rstrip("/")
        self.activity_url = activity_url.rstrip("/") if activity_url else None
        self.staleness = staleness
        self.activity_limit = activity_limit
        self.clock = clock
        self.replica_url = (replica_url or ledger_url).rstrip("/")

    async def _call(
        self, record: Record, send: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
    ) -> httpx.Response | None:
        try:
            async with self.pool.lease() as http:
                record.invoked = self.clock()
                record.wall_invoked = time.time()
                response = await send(http)
        except httpx.HTTPError as error:
            record.returned = self.clock()
            record.outcome = UNKNOWN if record.kind == "transfer" else ERROR
            record.error = f"{type(error).__name__}: {error}"[:200]
            return None
        record.returned = self.clock()
        record.status = response.status_code
        if response.status_code >= 400:
            kind = _problem_type(response)
            record.error = f"{response.status_code} {kind or response.reason_phrase}"[:200]
            if record.kind == "transfer" and kind.endswith("insufficient-funds"):
                record.outcome = REJECTED
            elif record.kind == "transfer" and response.status_code >= 500:
                record.outcome = UNKNOWN
            else:
                record.outcome = ERROR
            return None
        record.outcome = OK
        return response

    async def create_account(self, record: Record, balance: int) -> Record:
        body = {"id": record.account, "owner": "caplab-load", "balance_cents": balance}
        response = await self._call(
            record, lambda http: http.post(f"{self.ledger_url}/v1/accounts", json=body)
        )
        if response is not None:
            data = response.json()
            record.balance, record.version = data["balance_cents"], data["version"]
            record.commit_timestamp = epoch(data["commit_timestamp"])
        return record

    async def transfer(self, record: Record) -> Record:
        body = {"from": record.account, "to": record.other, "amount_cents": record.amount}
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        response = await self._call(
            record,
            lambda http: http.post(f"{self.ledger_url}/v1/transfers", json=body, headers=headers),
        )
        if response is not None:
            data = response.json()
            record.transfer_id = data["transfer_id"]
            record.from_version, record.to_version = data["from_version"], data["to_version"]
            record.commit_timestamp = epoch(data["commit_timestamp"])
        return record

    async def read(self, record: Record) -> Record:
        params = {"consistency": record.kind}
        if record.kind != "strong":
            params["staleness"] = self.staleness
        base = self.ledger_url if record.kind == "strong" else self.replica_url
        url = f"{base}/v1/accounts/{record.account}"
        response = await self._call(record, lambda http: http.get(url, params=params))
        if response is not None:
            data = response.json()
            record.balance, record.version = data["balance_cents"], data["version"]
            record.read_timestamp = epoch(data["read_timestamp"])
            record.served_by = data.get("served_by", "")
            record.consistency = data.get("consistency", "")
            record.staleness_bound = _bound(data.get("staleness"))
        return record

    async def snapshot(self, record: Record, accounts: list[str]) -> Record:
        params = {"accounts": ",".join(accounts), "consistency": "strong"}
        response = await self._call(
            record, lambda http: http.get(f"{self.ledger_url}/v1/snapshot", params=params)
        )
        if response is not None:
            data: dict[str, Any] = response.json()
            record.snapshot = {
                a["account"]: [a["balance_cents"], a["version"]] for a in data["accounts"]
            }
            record.total = data["total_cents"]
            record.read_timestamp = epoch(data["read_timestamp"])
            record.consistency = data.get("consistency", "")
        return record

    async def activity(self, record: Record) -> Record:
        assert self.activity_url is not None, "activity reads need an activity URL"
        url = f"{self.activity_url}/v1/accounts/{record.account}/activity"
        params = {"limit": str(self.activity_limit)}
        response = await self._call(record, lambda http: http.get(url, params=params))
        if response is not None:
            data = response.json()
            record.activity = [(i["transfer_id"], epoch(i["committed_at"])) for i in data["items"]]
            record.complete_page = not data.get("next_page_token")
        return record
