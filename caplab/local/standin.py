"""A stand-in ledger for measuring the load generator itself (tests and the benchmark).

It answers the ledger routes ``caplab load`` uses from memory, as fast as an ASGI app on
uvicorn can, with the ledger's wire shapes and real semantics (atomic transfers with
versions, overdraft refusals, snapshots; every read is fresh) plus an activity feed that shows
a transfer at once. Two knobs make it misbehave on purpose:

- ``--stall-at S --stall-for D``: every request arriving in the window [S, S+D) after the first
  load request (any request but account creation) is held until the window ends — a server
  pause, the classic coordinated-omission scenario. ``GET /internal/stall`` reports the window
  it made (``start``, ``end``: this host's monotonic clock, the one the load generator's
  records use) and how many requests it ``held``;
- ``--token T``: every request must carry ``Authorization: Bearer T`` (else 401), as Cloud Run
  with IAM demands.

Run: ``python -m caplab.local.standin --port 24001``, or :func:`running` from Python.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from caplab.local import launcher
from emulators.manager import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _now_rfc3339() -> str:
    nanos = time.time_ns()
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


class StandInLedger:
    def __init__(
        self, token: str | None = None, stall_at: float | None = None, stall_for: float = 0.0
    ) -> None:
        self.token = token
        self.stall_at, self.stall_for = stall_at, stall_for
        self.first_load_request: float | None = None
        self.held = 0
        self.accounts: dict[
            str, list[Any]
        ] = {}  # id -> [balance, version, updated_at, last_writer]
        self.activity: dict[str, list[dict[str, Any]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload = await self.handle(scope, body)
        data = json.dumps(payload).encode()
        content_type = b"application/problem+json" if status >= 400 else b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", b"%d" % len(data)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _maybe_stall(self, method: str, path: str) -> None:
        if self.stall_at is None or (method == "POST" and path == "/v1/accounts"):
            return
        now = time.monotonic()
        if self.first_load_request is None:
            self.first_load_request = now
        start = self.first_load_request + self.stall_at
        end = start + self.stall_for
        if start <= now < end:
            self.held += 1
            # Until ``end`` on time.monotonic(), which the window is reported on: uvloop's
            # timers run on a millisecond clock and may wake up to a millisecond early.
            while (remaining := end - time.monotonic()) > 0:  # noqa: ASYNC110 - a deadline, not an event
                await asyncio.sleep(remaining)

    def stall_window(self) -> dict[str, Any]:
        start = None
        if self.first_load_request is not None and self.stall_at is not None:
            start = self.first_load_request + self.stall_at
        end = None if start is None else start + self.stall_for
        return {"start": start, "end": end, "held": self.held}

    async def handle(self, scope: Scope, body: bytes) -> tuple[int, dict[str, Any]]:
        if scope["path"] == "/readyz":
            return 200, {"status": "ready"}
        if scope["path"] == "/internal/stall":
            return 200, self.stall_window()
        headers = dict(scope["headers"])
        if self.token and headers.get(b"authorization") != f"Bearer {self.token}".encode():
            return 401, {"type": "about:blank", "title": "Unauthorized", "status": 401}
        method, path = scope["method"], scope["path"]
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        await self._maybe_stall(method, path)
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/accounts":
            return self.create(json.loads(body))
        if method == "POST" and path == "/v1/transfers":
            return self.transfer(json.loads(body))
        if method == "GET" and path == "/v1/snapshot":
            return self.snapshot(query["accounts"].split(","))
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "accounts"]:
            return self.read(parts[2], query)
        if method == "GET" and len(parts) == 4 and parts[3] == "activity":
            items = self.activity.get(parts[2], [])[: int(query.get("limit", "20"))]
            return 200, {"items": items, "next_page_token": None, "projected_through": None}
        return 404, {"type": "about:blank", "title": "Not Found", "status": 404}

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        created = body["id"] not in self.accounts
        if created:
            self.accounts[body["id"]] = [body["balance_cents"], 1, _now_rfc3339(), "create"]
        balance, version, updated, _ = self.accounts[body["id"]]
        return 201 if created else 200, {"account": body["id"], "owner": body["owner"],
                     "balance_cents": balance, "version": version, "commit_timestamp": updated,
                     "created": created}  # fmt: skip

    def transfer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        source, target, amount = body["from"], body["to"], body["amount_cents"]
        if source not in self.accounts or target not in self.accounts:
            return 404, {"type": "/problems/account-not-found", "status": 404}
        if self.accounts[source][0] < amount:
            return 422, {"type": "/problems/insufficient-funds", "status": 422}
        stamp = _now_rfc3339()
        transfer_id = uuid.uuid4().hex
        previous = {a: self.accounts[a][3] for a in (source, target)}
        for account, delta in ((source, -amount), (target, amount)):
            self.accounts[account][0] += delta
            self.accounts[account][1] += 1
            self.accounts[account][2] = stamp
            self.accounts[account][3] = transfer_id
        for account in (source, target):
            item = {"transfer_id": transfer_id, "committed_at": stamp}
            self.activity.setdefault(account, []).insert(0, item)
        return 201, {"transfer_id": transfer_id, "from": source, "to": target,
                     "amount_cents": amount, "from_version": self.accounts[source][1],
                     "to_version": self.accounts[target][1], "commit_timestamp": stamp,
                     "from_previous_writer": previous[source],
                     "to_previous_writer": previous[target]}  # fmt: skip

    def read(self, account: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if account not in self.accounts:
            return 404, {"type": "/problems/account-not-found", "status": 404}
        balance, version, updated, writer = self.accounts[account]
        consistency = query.get("consistency", "strong")
        return 200, {"account": account, "owner": "caplab-load", "balance_cents": balance,
                     "version": version, "updated_at": updated, "read_timestamp": _now_rfc3339(),
                     "consistency": consistency, "staleness": query.get("staleness"),
                     "served_by": "leader" if consistency == "strong" else "replica",
                     "last_writer": writer}  # fmt: skip

    def snapshot(self, accounts: list[str]) -> tuple[int, dict[str, Any]]:
        rows = [
            {
                "account": a,
                "balance_cents": self.accounts[a][0],
                "version": self.accounts[a][1],
                "last_writer": self.accounts[a][3],
            }
            for a in accounts
        ]
        return 200, {"read_timestamp": _now_rfc3339(), "accounts": rows,
                     "total_cents": sum(r["balance_cents"] for r in rows),
                     "consistency": "strong", "staleness": None, "served_by": "leader"}  # fmt: skip


@contextlib.contextmanager
def running(log_path: Path, *options: str, ready_timeout: float = 20.0) -> Iterator[str]:
    """Run the stand-in as a separate process on a free port; yield its base URL once it
    answers ``/readyz``; stop it (its whole process group) on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "caplab.local.standin", "--port", str(port), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    standin = launcher.RunningService("stand-in ledger", port, process, log_path)
    try:
        launcher.wait_ready(standin, timeout=ready_timeout)
        yield url
    finally:
        launcher.stop(standin)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A stand-in ledger for load-generator tests.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    parser.add_argument("--stall-at", type=float)
    parser.add_argument("--stall-for", type=float, default=0.0)
    args = parser.parse_args(argv)
    app = StandInLedger(args.token, args.stall_at, args.stall_for)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
