"""Benchmark of the lab beyond one process. Prints figures; asserts nothing.

1. Scheduling capacity: the highest open-loop rate of strong reads that 1 worker, then 2
   workers (``caplab load --workers``, each a process), keep with a merged scheduling lag
   p99 ≤ 2 ms, nothing dropped and no errors, against the stand-in ledger (its own process).
   The rate doubles from ``--start`` until a run misses, then bisects. Target: 2 workers ≥
   1.8x one worker.
2. Merge: 1,000,000 operations in 4 shards (lab-shaped records: transfers, strong and stale
   reads, snapshots) read back from a directory, histograms added and records moved to the
   reference clock; then the checkers' history built from the merged run and written as JSON.
   Target: ≤ 10 s for the merge.

Run: ``make bench-workers`` (or ``python -m caplab.bench.workers --seconds 4``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console

from caplab.local import standin
from loadtest.checks.serializable import ledger_history
from loadtest.config import LoadConfig
from loadtest.linearizability import dump_history
from loadtest.merge import merge
from loadtest.plan import Part, account_ids
from loadtest.records import OK, Record
from loadtest.runner import Endpoints, RunResult
from loadtest.shards import DirectoryStore, read_shards, write_shard
from loadtest.stats import percentiles_ms
from loadtest.workers import WorkerSpec, run_workers

LAG_P99_MS = 2.0


def trial(url: str, workers: int, rate: float, seconds: float, scratch: Path) -> tuple[bool, str]:
    """One run at ``rate``: (kept the schedule, a line of figures)."""
    config = LoadConfig(
        rate=rate, duration=seconds + 1, warmup=1.0, mix={"strong": 1}, accounts=10,
        staleness="1ms",
    )  # fmt: skip
    run_id = f"bench-{time.monotonic_ns()}"
    directory = scratch / run_id
    specs = [
        WorkerSpec(config, url, None, None, False, run_id, Part(i, workers), directory)
        for i in range(workers)
    ]
    run_workers(specs, Console(file=io.StringIO()))
    merged = merge(read_shards(DirectoryStore(directory)))
    lag = percentiles_ms(merged.lag)
    stats = merged.stats["strong"]
    dropped = sum(merged.result.dropped.values())
    kept = lag["p99"] <= LAG_P99_MS and not dropped and not stats.errors
    per_worker = ", ".join(f"{percentiles_ms(w.lag)['p99']:.2f}" for w in merged.workers)
    cpu = ", ".join(f"{w.cpu_per_operation * 1000:.3f}" for w in merged.workers)
    line = (
        f"  {workers} worker(s) at {rate:7.0f}/s: lag p99 {lag['p99']:6.2f} ms (per worker "
        f"{per_worker}), late {stats.late}, dropped {dropped}, errors {stats.errors}, achieved "
        f"{stats.throughput:.0f}/s, CPU per operation {cpu} ms → {'kept' if kept else 'missed'}"
    )
    return kept, line


def capacity(console: Console, url: str, workers: int, start: float, seconds: float,
             scratch: Path) -> float:  # fmt: skip
    """The highest rate kept (doubling, then four bisection steps)."""
    good, bad, rate = 0.0, 0.0, start
    while not bad:
        kept, line = trial(url, workers, rate, seconds, scratch)
        console.print(line, highlight=False)
        good, bad = (rate, 0.0) if kept else (good, rate)
        rate *= 2
    for _ in range(4):
        rate = (good + bad) / 2
        kept, line = trial(url, workers, rate, seconds, scratch)
        console.print(line, highlight=False)
        good, bad = (rate, bad) if kept else (good, rate)
    return good


def bench_capacity(console: Console, start: float, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as scratch, standin.running(Path(scratch) / "s.log") as url:
        found = {}
        for workers in (1, 2):
            console.print(f"[bold]{workers} worker(s)[/]: highest rate with lag p99 ≤ 2 ms")
            found[workers] = capacity(console, url, workers, start, seconds, Path(scratch))
    ratio = found[2] / found[1] if found[1] else float("nan")
    console.print(
        f"[bold]capacity[/]: 1 worker {found[1]:.0f}/s, 2 workers {found[2]:.0f}/s "
        f"({ratio:.2f}x; target ≥ 1.8x)"
    )


def synthetic_shard(index: int, count: int, operations: int, accounts: list[str]) -> RunResult:
    """One worker's share of a lab-shaped run (times on a monotonic clock)."""
    rng = random.Random(index)
    config = LoadConfig(rate=1000, duration=operations * count / 1000 + 1, warmup=0.0,
                        accounts=len(accounts))  # fmt: skip
    setup = [
        Record(seq=-1 - i, kind="create", account=a, intended=0.0, invoked=0.0, returned=0.01,
               wall_invoked=1e9, outcome=OK, balance=10_000, version=1, commit_timestamp=1e9,
               created=index == 0)
        for i, a in enumerate(accounts)
    ]  # fmt: skip
    records = []
    versions = dict.fromkeys(accounts, 1)
    for n in range(operations):
        seq = n * count + index
        at = 1.0 + seq / 1000
        kind = rng.choices(("transfer", "strong", "exact", "bounded", "cached", "snapshot"),
                           (10, 25, 20, 20, 20, 2))[0]  # fmt: skip
        account = rng.choice(accounts)
        r = Record(seq=seq, kind=kind, account=account, intended=at, invoked=at + 0.0002,
                   returned=at + 0.004, wall_invoked=1e9 + at, outcome=OK)  # fmt: skip
        if kind == "transfer":
            other = rng.choice([a for a in accounts if a != account])
            versions[account] += 1
            versions[other] += 1
            r.other, r.amount, r.transfer_id = other, 10, f"t{seq}"
            r.from_version, r.to_version = versions[account], versions[other]
            r.commit_timestamp = 1e9 + at + 0.002
        elif kind == "snapshot":
            r.snapshot = {a: [10_000, versions[a]] for a in accounts}
            r.total = 10_000 * len(accounts)
        else:
            r.balance, r.version, r.read_timestamp = 10_000, versions[account], 1e9 + at
            r.served_by, r.staleness_bound = "leader", 2.0
        records.append(r)
    return RunResult(config, "bench-merge", accounts, Endpoints("http://127.0.0.1:1"), records,
                     setup, started_wall=1e9, part=Part(index, count), wall_offset=1e9)  # fmt: skip


def bench_merge(console: Console, operations: int, shards: int) -> None:
    accounts = account_ids("bench", 20)
    with tempfile.TemporaryDirectory() as scratch:
        store = DirectoryStore(Path(scratch))
        for index in range(shards):
            write_shard(synthetic_shard(index, shards, operations // shards, accounts), store)
        size = sum(p.stat().st_size for p in Path(scratch).iterdir()) / 1e6
        started, cpu = time.perf_counter(), time.process_time()
        merged = merge(read_shards(store))
        merged_at, merge_cpu = time.perf_counter(), time.process_time() - cpu
        history = ledger_history(merged.result)
        built_at = time.perf_counter()
        text = json.dumps(dump_history(history, model="ledger"))
        (Path(scratch) / "history.json").write_text(text)
        written_at = time.perf_counter()
    console.print(
        f"[bold]merge[/]: {len(merged.result.records):,} operations in {shards} shards "
        f"({size:.0f} MB gzip): read + histograms added + reference clock "
        f"{merged_at - started:.2f} s ({merge_cpu:.2f} s of CPU; target ≤ 10 s); checkers' "
        f"history of "
        f"{len(history):,} operations built in {built_at - merged_at:.2f} s, written in "
        f"{written_at - built_at:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the lab's workers (prints figures).")
    parser.add_argument("--start", type=float, default=500.0, help="first rate tried, /s")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per trial")
    parser.add_argument("--operations", type=int, default=1_000_000, help="merged operations")
    parser.add_argument("--skip-capacity", action="store_true")
    args = parser.parse_args()
    console = Console()
    load1, load5, _ = os.getloadavg()
    console.print(f"machine: {os.cpu_count()} CPUs, load average {load1:.1f} / {load5:.1f}")
    if not args.skip_capacity:
        bench_capacity(console, args.start, args.seconds)
    bench_merge(console, args.operations, 4)


if __name__ == "__main__":
    main()
