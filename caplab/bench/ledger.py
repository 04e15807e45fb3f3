"""Benchmark: what the ledger's HTTP service costs over the raw Spanner client, side by side in
one run against the same fresh emulator, and how long the outbox relay takes to publish.

Prints (asserts nothing):
- strong-read p50/p99: raw client ``snapshot().read`` vs ``GET /v1/accounts/{id}`` (interleaved
  one for one, so both see the same emulator age); target HTTP/raw p50 ≤ 1.3;
- exact-stale and cached reads through HTTP, for the CP/AP price list;
- transactions/s with 8 concurrent clients: the ledger's own transfer transaction run in-process
  through the raw client vs ``POST /v1/transfers``; target ledger/raw ≥ 0.8;
- commit-to-publish delay (relay's own measure) and commit-to-delivery on a pull subscription;
- the emulator's commit count at each phase: its strong reads slow down as it ages
  (docs/benchmarks.md), so every figure says how old the emulator was.

    make bench-ledger            # or: python -m caplab.bench.ledger --reads 1000 --seconds 5
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from google.cloud.spanner_v1 import KeySet
from rich.console import Console
from rich.table import Table

from caplab.core import catalogue
from caplab.core.clients import ClientFactory, quiet_emulator_notices
from caplab.core.timestamps import parse_rfc3339
from caplab.local import launcher
from emulators import bootstrap, manager
from services.ledger.models import TransferIn
from services.ledger.settings import LedgerSettings
from services.ledger.store import LedgerStore
from services.ledger.transfers import Transfers
from services.shared.transactions import TransactionRunner

ACCOUNTS = 16
OPENING_BALANCE = 10**12


class CommitCounter:
    """Commits this run made on the (fresh) emulator: the emulator itself exposes none."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n


@dataclass(frozen=True)
class RelayFigures:
    published: dict[str, float]
    """The relay's own commit-to-publish-acked histogram (ms; ``count`` of this phase)."""
    delivered: list[float]
    """Commit-to-pull delays seen by a subscriber (s)."""


class LeanHttp:
    """A keep-alive ``http.client`` connection: the read-latency loop measures the service,
    not the client library (httpx costs a few hundred µs per request by itself)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, path: str) -> None:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


@contextmanager
def fresh_stack() -> Iterator[tuple[manager.StackConfig, dict[str, str]]]:
    with tempfile.TemporaryDirectory(prefix="caplab-bench-ledger-") as home:
        environ = dict(os.environ, CAPLAB_HOME=home)
        config = manager.StackConfig.from_environ(environ, port_overrides=manager.free_ports())
        try:
            manager.up(config)
            yield config, dict(environ, **manager.client_environment(config))
        finally:
            manager.down(config)


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def run_clients(clients: int, seconds: float, work: Callable[[int], None]) -> int:
    """Call ``work(client_index)`` from ``clients`` threads for ``seconds``; calls made."""
    stop = time.monotonic() + seconds
    counts = [0] * clients

    def loop(index: int) -> None:
        while time.monotonic() < stop:
            work(index)
            counts[index] += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(loop, range(clients)))
    return sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description="ledger HTTP vs raw Spanner client")
    parser.add_argument("--reads", type=int, default=1000, help="strong reads per side")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration per throughput side")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--relay-rate", type=float, default=50.0, help="transfers/s for the relay")
    args = parser.parse_args()
    quiet_emulator_notices()
    console = Console()
    commits = CommitCounter()
    with fresh_stack() as (_config, environ), manager.exported(environ):
        log_dir = Path(tempfile.mkdtemp(prefix="caplab-bench-ledger-logs-"))
        port = manager.free_port()
        ledger = launcher.start("ledger", port, environ, log_dir / "ledger.log")
        try:
            launcher.wait_ready(ledger)
            # Invalidations go to this ledger; nothing else of this run has an endpoint.
            bootstrap.ensure_pubsub(
                {**dict.fromkeys(catalogue.NAMES, "http://127.0.0.1:9"), "ledger": ledger.url}
            )
            settings = LedgerSettings.from_environ(environ)
            database = ClientFactory(settings.gcp).spanner_database
            store = LedgerStore(
                TransactionRunner(database, settings.deadline, settings.transactions)
            )
            api = httpx.Client(base_url=ledger.url, timeout=30)
            accounts = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(ACCOUNTS)]
            for account in accounts:
                api.post(
                    "/v1/accounts",
                    json={"id": account, "owner": "bench", "balance_cents": OPENING_BALANCE},
                ).raise_for_status()
                commits.add()
            time.sleep(1.1)  # so 1 s exact-stale reads find the accounts

            # --- reads, interleaved -------------------------------------------------------
            age_before_reads = commits.count
            raw: list[float] = []
            served: list[float] = []
            stale: list[float] = []
            cached: list[float] = []

            def raw_read(account: str) -> None:
                with database.snapshot() as snapshot:
                    list(snapshot.read("Accounts", ("AccountId", "BalanceCents", "Version"),
                                       KeySet(keys=[[account]])))  # fmt: skip

            lean = LeanHttp(ledger.port)
            for i in range(args.reads):
                account = accounts[i % ACCOUNTS]
                raw.append(timed(lambda a=account: raw_read(a)))
                served.append(timed(lambda a=account: lean.get(f"/v1/accounts/{a}")))
                stale.append(timed(lambda a=account: lean.get(
                    f"/v1/accounts/{a}?consistency=exact&staleness=1s"
                )))  # fmt: skip
                cached.append(timed(lambda a=account: lean.get(
                    f"/v1/accounts/{a}?consistency=cached"
                )))  # fmt: skip

            reads = Table(title=f"reads, {args.reads} each, interleaved (emulator commits: "
                                f"{age_before_reads})")  # fmt: skip
            for column in ("read", "p50 ms", "p99 ms"):
                reads.add_column(column, justify="right")
            for name, samples in (
                ("raw client, strong", raw),
                ("ledger HTTP, strong", served),
                ("ledger HTTP, exact 1s", stale),
                ("ledger HTTP, cached", cached),
            ):
                reads.add_row(name, ms(statistics.median(samples)), ms(percentile(samples, 99)))
            console.print(reads)
            read_ratio = statistics.median(served) / statistics.median(raw)
            console.print(f"strong read p50 ratio HTTP/raw = {read_ratio:.2f} (target ≤ 1.3)")

            # --- transactions/s -----------------------------------------------------------
            transfers = Transfers(store)

            def pair(index: int) -> tuple[str, str]:
                source = accounts[(index * 2) % ACCOUNTS]
                return source, accounts[(index * 2 + 1 + int(time.monotonic() * 7) % 3) % ACCOUNTS]

            def raw_transfer(index: int) -> None:
                source, target = pair(index)
                request = TransferIn.model_validate(
                    {"from": source, "to": target, "amount_cents": 1}
                )
                transfers.execute(uuid.uuid4().hex, request)
                commits.add()

            clients = [httpx.Client(base_url=ledger.url, timeout=30) for _ in range(args.clients)]

            def http_transfer(index: int) -> None:
                source, target = pair(index)
                response = clients[index].post(
                    "/v1/transfers",
                    json={"from": source, "to": target, "amount_cents": 1},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                response.raise_for_status()
                commits.add()

            # Alternate slices so both sides see the same emulator age.
            raw_calls = http_calls = 0
            age_start = commits.count
            slice_seconds = args.seconds / 2
            for _ in range(2):
                raw_calls += run_clients(args.clients, slice_seconds, raw_transfer)
                http_calls += run_clients(args.clients, slice_seconds, http_transfer)
            raw_rate, http_rate = raw_calls / args.seconds, http_calls / args.seconds
            throughput = Table(
                title=f"read-write transactions, {args.clients} clients, {args.seconds:.0f} s "
                f"per side in alternating halves (emulator commits {age_start} → {commits.count})"
            )
            for column in ("side", "txn/s"):
                throughput.add_column(column, justify="right")
            throughput.add_row("raw client (same transfer transaction)", f"{raw_rate:.0f}")
            throughput.add_row("ledger HTTP POST /v1/transfers", f"{http_rate:.0f}")
            console.print(throughput)
            console.print(
                f"throughput ratio ledger/raw = {http_rate / raw_rate:.2f} (target ≥ 0.8)"
            )

            # --- relay ----------------------------------------------------------------------
            delivery = measure_relay(environ, log_dir, ledger, accounts, args.relay_rate, commits)
            relay_table = Table(title="outbox relay (poll 50 ms), steady "
                                      f"{args.relay_rate:.0f} transfers/s")  # fmt: skip
            for column in ("measure", "count", "p50 ms", "p99 ms", "max ms"):
                relay_table.add_column(column, justify="right")
            published = delivery.published
            relay_table.add_row("commit → publish acked (relay /stats)", str(published["count"]),
                                f"{published['p50']:.1f}", f"{published['p99']:.1f}",
                                f"{published['max']:.1f}")  # fmt: skip
            seen = delivery.delivered
            relay_table.add_row("commit → pulled by a subscriber", str(len(seen)),
                                ms(statistics.median(seen)), ms(percentile(seen, 99)),
                                ms(max(seen)))  # fmt: skip
            console.print(relay_table)
            console.print(f"emulator commits made by this run: ~{commits.count} "
                          "(plus the relay's stamping commits)")  # fmt: skip
            console.print(f"cores: {os.cpu_count()}; service logs in {log_dir}")
            for client in clients:
                client.close()
            api.close()
        finally:
            launcher.stop(ledger)


def measure_relay(
    environ: dict[str, str],
    log_dir: Path,
    ledger: launcher.RunningService,
    accounts: list[str],
    rate: float,
    commits: CommitCounter,
    seconds: float = 5.0,
) -> RelayFigures:
    """Steady transfers while the relay runs; returns the relay's own commit-to-publish
    figures and the commit-to-delivery delays a pull subscriber observed (seconds)."""
    from google.cloud import pubsub_v1
    from google.cloud.pubsub_v1.subscriber.message import Message

    subscriber = pubsub_v1.SubscriberClient()
    tap = subscriber.subscription_path("caplab-local", f"bench-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(name=tap, topic="projects/caplab-local/topics/transfer-events")
    # The throughput phases left a backlog; mark it published so only the steady stream
    # below is measured.
    database = ClientFactory(LedgerSettings.from_environ(environ).gcp).spanner_database
    database.execute_partitioned_dml(
        "UPDATE Outbox SET PublishedAt = PENDING_COMMIT_TIMESTAMP() WHERE PublishedAt IS NULL"
    )
    relay = launcher.start("relay", manager.free_port(), environ, log_dir / "relay.log")
    delays: list[float] = []
    try:
        launcher.wait_ready(relay)
        baseline = httpx.get(relay.url + "/stats").json()["commit_to_publish_ms"]["count"]
        relay_start = datetime.now(UTC)
        lock = threading.Lock()

        def received(message: Message) -> None:
            now = datetime.now(UTC)
            committed = parse_rfc3339(message.attributes["committed_at"])
            message.ack()
            if committed >= relay_start:
                with lock:
                    delays.append((now - committed) / timedelta(seconds=1))

        streaming = subscriber.subscribe(tap, callback=received)
        wanted = int(rate * seconds)
        try:
            with httpx.Client(base_url=ledger.url, timeout=30) as api:
                interval = 1 / rate
                next_at = time.monotonic()
                for i in range(wanted):
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                    api.post(
                        "/v1/transfers",
                        json={
                            "from": accounts[i % 4],
                            "to": accounts[4 + i % 4],
                            "amount_cents": 1,
                        },
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    ).raise_for_status()
                    commits.add()
            end = time.monotonic() + 30
            while len(delays) < wanted and time.monotonic() < end:
                time.sleep(0.1)
        finally:
            streaming.cancel()
        stats = httpx.get(relay.url + "/stats").json()
    finally:
        launcher.stop(relay)
        subscriber.delete_subscription(subscription=tap)
        subscriber.close()
    figures = stats["commit_to_publish_ms"]
    figures["count"] = figures["count"] - baseline
    return RelayFigures(published=figures, delivered=delays)


if __name__ == "__main__":
    main()
