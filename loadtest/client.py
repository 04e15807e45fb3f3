"""The lab's HTTP operations against the ledger (and the activity feed), each filling in a
:class:`~loadtest.records.Record` — never raising: every failure is an outcome.

Requests go through aiohttp rather than httpx's async client because the generator's CPU per
request decides whether it keeps an open-loop schedule. On this 2-core machine (``make
bench-lab``, 1,000 requests/s) httpx spent 1.0–1.4 ms of CPU per request and fell behind by
0.14–9 s (lag p99); aiohttp spends 0.34–0.43 ms and keeps the schedule (lag p99 1.2–4.3 ms).
Redirects are not followed: the record describes the answer to the request that was
scheduled.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from caplab.core.durations import DurationError, parse_duration
from caplab.core.timestamps import parse_rfc3339
from loadtest.auth import IdTokenAuth
from loadtest.records import ERROR, OK, REJECTED, UNKNOWN, Record


def epoch(text: str) -> float:
    return parse_rfc3339(text).timestamp()


def _bound(text: str | None) -> float | None:
    try:
        return parse_duration(text).total_seconds() if text else None
    except DurationError:
        return None


def _problem_type(content: bytes) -> str:
    try:
        problem = json.loads(content)
    except ValueError:
        return ""
    return str(problem.get("type", "")) if isinstance(problem, dict) else ""


def _committed(record: Record, data: dict[str, Any]) -> None:
    record.transfer_id = data["transfer_id"]
    record.from_version, record.to_version = data["from_version"], data["to_version"]
    record.from_previous_writer = data.get("from_previous_writer") or ""
    record.to_previous_writer = data.get("to_previous_writer") or ""
    record.commit_timestamp = epoch(data["commit_timestamp"])


class LabClient:
    """Issues one operation and records it. ``clock`` is the monotonic clock of the run;
    ``auth``, when given, adds an ID token for each request's service."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ledger_url: str,
        activity_url: str | None = None,
        staleness: str = "2s",
        activity_limit: int = 20,
        clock: Callable[[], float] = time.monotonic,
        replica_url: str | None = None,
        auth: IdTokenAuth | None = None,
    ) -> None:
        self.session = session
        self.ledger_url = ledger_url.rstrip("/")
        self.activity_url = activity_url.rstrip("/") if activity_url else None
        self.staleness = staleness
        self.activity_limit = activity_limit
        self.clock = clock
        self.replica_url = (replica_url or ledger_url).rstrip("/")
        self.auth = auth

    async def _call(
        self,
        record: Record,
        method: str,
        url: str,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON body of a successful response; ``None`` when the request failed
        (the record then says how)."""
        record.invoked = self.clock()
        record.wall_invoked = time.time()
        if self.auth is not None:
            headers = {**(headers or {}), **self.auth.headers(url)}
        try:
            async with self.session.request(
                method, url, params=params, json=body, headers=headers, allow_redirects=False
            ) as response:
                status, reason = response.status, response.reason
                content = await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            record.returned = self.clock()
            record.outcome = UNKNOWN if record.kind == "transfer" else ERROR
            record.error = f"{type(error).__name__}: {error}"[:200]
            return None
        record.returned = self.clock()
        record.status = status
        if status >= 400:
            kind = _problem_type(content)
            record.error = f"{status} {kind or reason or ''}"[:200]
            if record.kind == "transfer" and kind.endswith("insufficient-funds"):
                record.outcome = REJECTED
            elif record.kind == "transfer" and status >= 500:
                record.outcome = UNKNOWN
            else:
                record.outcome = ERROR
            return None
        record.outcome = OK
        return json.loads(content)

    async def create_account(self, record: Record, balance: int) -> Record:
        body = {"id": record.account, "owner": "caplab-load", "balance_cents": balance}
        data = await self._call(record, "POST", f"{self.ledger_url}/v1/accounts", body=body)
        if data is not None:
            record.balance, record.version = data["balance_cents"], data["version"]
            record.commit_timestamp = epoch(data["commit_timestamp"])
            record.created = bool(data.get("created", True))
        return record

    async def transfer(self, record: Record) -> Record:
        body = {"from": record.account, "to": record.other, "amount_cents": record.amount}
        record.idempotency_key = uuid.uuid4().hex
        headers = {"Idempotency-Key": record.idempotency_key}
        url = f"{self.ledger_url}/v1/transfers"
        data = await self._call(record, "POST", url, body=body, headers=headers)
        if data is not None:
            _committed(record, data)
        return record

    async def resolve(self, record: Record) -> bool:
        """Replay an unknown transfer with its Idempotency-Key; True once its outcome is
        known (``record.resolved``, and for a commit its versions and timestamp)."""
        probe = Record(seq=record.seq, kind="transfer", account=record.account,
                       other=record.other, amount=record.amount, intended=self.clock())  # fmt: skip
        body = {"from": record.account, "to": record.other, "amount_cents": record.amount}
        headers = {"Idempotency-Key": record.idempotency_key}
        url = f"{self.ledger_url}/v1/transfers"
        data = await self._call(probe, "POST", url, body=body, headers=headers)
        if probe.outcome not in (OK, REJECTED):
            return False
        if data is not None:
            _committed(record, data)
        record.resolved, record.resolved_returned = probe.outcome, probe.returned
        return True

    async def read(self, record: Record) -> Record:
        params = {"consistency": record.kind}
        if record.kind != "strong":
            params["staleness"] = self.staleness
        base = self.ledger_url if record.kind == "strong" else self.replica_url
        url = f"{base}/v1/accounts/{record.account}"
        data = await self._call(record, "GET", url, params=params)
        if data is not None:
            record.balance, record.version = data["balance_cents"], data["version"]
            record.read_timestamp = epoch(data["read_timestamp"])
            record.served_by = data.get("served_by", "")
            record.consistency = data.get("consistency", "")
            record.staleness_bound = _bound(data.get("staleness"))
            record.writer = data.get("last_writer") or ""
        return record

    async def snapshot(self, record: Record, accounts: list[str]) -> Record:
        params = {"accounts": ",".join(accounts), "consistency": "strong"}
        data = await self._call(record, "GET", f"{self.ledger_url}/v1/snapshot", params=params)
        if data is not None:
            record.snapshot = {
                a["account"]: [a["balance_cents"], a["version"]] for a in data["accounts"]
            }
            record.snapshot_writers = {
                a["account"]: a["last_writer"] for a in data["accounts"] if a.get("last_writer")
            }
            record.total = data["total_cents"]
            record.read_timestamp = epoch(data["read_timestamp"])
            record.consistency = data.get("consistency", "")
        return record

    async def activity(self, record: Record) -> Record:
        assert self.activity_url is not None, "activity reads need an activity URL"
        url = f"{self.activity_url}/v1/accounts/{record.account}/activity"
        params = {"limit": str(self.activity_limit)}
        data = await self._call(record, "GET", url, params=params)
        if data is not None:
            record.activity = [(i["transfer_id"], epoch(i["committed_at"])) for i in data["items"]]
            record.complete_page = not data.get("next_page_token")
        return record
