"""Benchmark: what the outbox relay costs idle and while Spanner and Pub/Sub are down, and its
commit-to-publish delay under a steady stream of transfers.

Starts its own Spanner and Pub/Sub emulators (free ports, a temporary ``CAPLAB_HOME``), then:

1. **emulator alone**: the Spanner emulator's CPU over ``--seconds`` with no relay (its own
   idle cost, to subtract);
2. **idle**: one relay (default settings) leading, nothing to publish: CPU of the relay process
   and of the Spanner emulator's processes over ``--seconds``, from ``/proc/<pid>/stat``
   (utime + stime), after a settling time in which the poll interval reaches its idle bound;
3. **commit to publish**: the ledger as a process and ``--rate`` transfers/s for 5 s, the
   relay's own histogram (``/stats``), as ``make bench-ledger`` measures it; run twice, the
   second reported (the first warms the fresh emulator up);
4. **both down**: a fresh relay leading, then the Spanner and Pub/Sub emulators stopped: the
   relay's CPU over ``--seconds`` and its back-off from ``/stats``;
5. **recovery**: both emulators started again (empty, as after any emulator restart): the
   time until the relay leads again and has published a newly committed row.

Prints figures with the load average (the machine may be shared); asserts nothing. The
targets: relay CPU ≤ 1 % of a core idle and ≤ 1.5 % with both down.

    make bench-relay            # or: python -m caplab.bench.relay --seconds 30
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from caplab.bench.ledger import CommitCounter, measure_relay
from caplab.core import catalogue
from caplab.core.clients import quiet_emulator_notices
from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from caplab.local import launcher
from emulators import bootstrap, manager
from emulators.specs import PUBSUB, SPANNER

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) ``pid`` has used."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def group_cpu(pgid: int) -> float:
    """CPU seconds used by the live processes of process group ``pgid``."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def share_of_a_core(read: Callable[[], float], seconds: float) -> float:
    """The share of one core ``read()`` grows by over ``seconds`` of wall time."""
    before, started = read(), time.monotonic()
    time.sleep(seconds)
    return (read() - before) / (time.monotonic() - started)


def spanner_pgid(config: manager.StackConfig) -> int:
    state = manager.EmulatorState.load(config.state_path(SPANNER))
    if state is None:
        raise RuntimeError("the Spanner emulator is not running")
    return state.pgid


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def stats(relay: launcher.RunningService) -> dict[str, Any]:
    return httpx.get(relay.url + "/stats", timeout=10).json()


def wait_for(probe: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``probe()`` holds (polled every 50 ms)."""
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.05)
    return time.monotonic() - started


def leads(relay: launcher.RunningService) -> bool:
    try:
        return bool(stats(relay)["lease"]["leader"])
    except httpx.HTTPError:
        return False


@contextmanager
def relay_process(environ: dict[str, str], log_dir: Path) -> Iterator[launcher.RunningService]:
    port = manager.free_port()
    relay = launcher.start("relay", port, environ, log_dir / f"relay-{port}.log")
    try:
        launcher.wait_ready(relay, timeout=60)
        wait_for(lambda: leads(relay), 60, "the relay to lead")
        yield relay
    finally:
        launcher.stop(relay)


def add_outbox_row(environ: dict[str, str]) -> str:
    """One committed transfer-shaped Outbox row (as the ledger writes it); its event id."""
    from google.cloud import spanner

    from services.shared.events import TRANSFER_COMMITTED, TransferEvent

    event_id = uuid.uuid4().hex
    payload = TransferEvent(event_id, uuid.uuid4().hex, "bench-a", "bench-b", 1, 1, 1)
    row = (event_id, TRANSFER_COMMITTED, "bench-a", payload.to_json().decode())
    with manager.exported(environ):
        client = spanner.Client(project=LOCAL_PROJECT)
        database = client.instance(TOPOLOGY.spanner.instance).database(TOPOLOGY.spanner.database)
        database.run_in_transaction(
            lambda t: t.insert(
                "Outbox",
                ("EventId", "EventType", "OrderingKey", "Payload", "CommittedAt"),
                [(*row, spanner.COMMIT_TIMESTAMP)],
            )
        )
    return event_id


def main() -> None:
    parser = argparse.ArgumentParser(description="outbox relay CPU and delay")
    parser.add_argument("--seconds", type=float, default=20.0, help="each CPU measurement")
    parser.add_argument("--settle", type=float, default=5.0, help="idle time before measuring")
    parser.add_argument("--rate", type=float, default=50.0, help="transfers/s for the delay")
    args = parser.parse_args()
    quiet_emulator_notices()
    console = Console()
    cpu = Table(title=f"CPU, share of one core over {args.seconds:.0f} s (/proc/<pid>/stat)")
    for column in ("phase", "relay", "Spanner emulator", "load average 1/5/15 min"):
        cpu.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="caplab-bench-relay-") as home:
        log_dir = Path(home) / "logs"
        log_dir.mkdir()
        config = manager.StackConfig.from_environ(
            dict(os.environ, CAPLAB_HOME=home),
            port_overrides=manager.free_ports((SPANNER, PUBSUB)),
            emulators=(SPANNER, PUBSUB),
        )
        environ = dict(os.environ, CAPLAB_HOME=home, **manager.client_environment(config))
        try:
            manager.up(config)
            emulator = spanner_pgid(config)

            # 1. the emulator alone
            alone = share_of_a_core(lambda: group_cpu(emulator), args.seconds)
            cpu.add_row("emulator alone", "-", f"{alone:.2%}", load())

            # 2. idle
            with relay_process(environ, log_dir) as relay:
                time.sleep(args.settle)
                pid = relay.process.pid
                started = (process_cpu(pid), group_cpu(emulator), time.monotonic())
                time.sleep(args.seconds)
                elapsed = time.monotonic() - started[2]
                idle_relay = (process_cpu(pid) - started[0]) / elapsed
                idle_emulator = (group_cpu(emulator) - started[1]) / elapsed
                idle_stats = stats(relay)
            cpu.add_row("idle", f"{idle_relay:.2%}", f"{idle_emulator:.2%}", load())
            console.print(
                f"idle relay: poll interval {idle_stats['poll_interval_s']} s, "
                f"{idle_stats['polls']} polls in {args.settle + args.seconds:.0f} s, "
                f"lease epoch {idle_stats['lease']['epoch']}"
            )

            # 3. commit to publish, through the ledger
            delay = measure_commit_to_publish(environ, log_dir, args.rate)

            # 4. both down, 5. recovery
            with relay_process(environ, log_dir) as relay:
                manager.down(config)
                time.sleep(args.settle)
                down_relay = share_of_a_core(lambda: process_cpu(relay.process.pid), args.seconds)
                down_stats = stats(relay)
                cpu.add_row("Spanner and Pub/Sub down", f"{down_relay:.2%}", "-", load())
                manager.up(config)
                event_id = add_outbox_row(environ)
                try:
                    recovered = wait_for(
                        lambda: stats(relay)["published"] > down_stats["published"],
                        120,
                        f"the relay to publish {event_id} after the emulators came back",
                    )
                except RuntimeError as error:
                    raise RuntimeError(f"{error}\n{relay.log_tail(60)}") from error
        finally:
            manager.down(config)
    console.print(cpu)
    backoff = down_stats["backoff"]
    console.print(
        f"both down: relay back-off now {backoff['current_s']} s (cap {backoff['max_s']} s) "
        f"after {backoff['consecutive_failures']} consecutive failures; lease back-off "
        f"{down_stats['lease']['backoff']['current_s']} s; last error: {backoff['last_error']}"
    )
    console.print(f"recovery: a row committed after the restart was published {recovered:.1f} s "
                  "after the commit")  # fmt: skip
    figures = delay["commit_to_publish_ms"]
    console.print(
        f"commit → publish acknowledged at {args.rate:.0f} transfers/s (relay /stats): "
        f"count {figures['count']}, p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms, "
        f"max {figures['max']:.1f} ms"
    )
    console.print(f"cores: {os.cpu_count()}; targets: relay ≤ 1% idle, ≤ 1.5% both down")


def measure_commit_to_publish(
    environ: dict[str, str], log_dir: Path, rate: float
) -> dict[str, Any]:
    """The ledger as a process and ``rate`` transfers/s for 5 s, twice; the relay's figures
    of the second run."""
    ledger = launcher.start("ledger", manager.free_port(), environ, log_dir / "ledger.log")
    try:
        launcher.wait_ready(ledger, timeout=60)
        with manager.exported(environ):
            bootstrap.ensure_pubsub(
                {**dict.fromkeys(catalogue.NAMES, "http://127.0.0.1:9"), "ledger": ledger.url}
            )
            accounts = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(8)]
            with httpx.Client(base_url=ledger.url, timeout=30) as api:
                for account in accounts:
                    api.post(
                        "/v1/accounts",
                        json={"id": account, "owner": "bench", "balance_cents": 10**12},
                    ).raise_for_status()
            # The first run on a fresh emulator is slower whatever the relay (warm-up): the
            # second one is reported.
            measure_relay(environ, log_dir, ledger, accounts, rate, CommitCounter())
            figures = measure_relay(environ, log_dir, ledger, accounts, rate, CommitCounter())
        return {"commit_to_publish_ms": figures.published}
    finally:
        launcher.stop(ledger)


if __name__ == "__main__":
    main()
