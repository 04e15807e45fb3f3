"""Benchmark of the lab itself. Prints figures; asserts nothing.

1. Scheduling accuracy: open-loop strong reads at ``--rate`` (default 1,000/s) for
   ``--seconds`` against the stand-in ledger (a trivial local endpoint in its own process):
   scheduling lag p50/p99/max (intended start → actual send), late starts, achieved rate, and
   the generator's CPU per request. Target: lag p99 ≤ 2 ms on 2 cores.
2. Linearizability checker on a 10,000-operation ledger history over 100 accounts (30%
   transfers, 70% strong reads, up to 4 ms of overlap): target ≤ 5 s.
3. Checker on one compare-and-set register: a few hundred operations, each overlapping about
   fifty others (the hard case for the search): the time, reported.

Run: ``make bench-lab`` (or ``python -m caplab.bench.lab --rate 1000 --seconds 5``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console

from caplab.local import standin
from loadtest.config import LoadConfig
from loadtest.linearizability import KV, LEDGER, Operation, check
from loadtest.runner import Endpoints, run_load
from loadtest.stats import kind_stats, percentiles_ms, scheduling_lag


def ledger_history(operations: int, accounts: int, seed: int = 1) -> list[Operation]:
    """A history a correct ledger could produce: each operation takes effect at one instant
    inside its [call, return] interval; arrivals are Poisson at 1,000/s."""
    rng = random.Random(seed)
    state = {f"a{i:03d}": [10_000, 1] for i in range(accounts)}
    history = [
        Operation(-1, {"op": "create", "account": a, "balance": 10_000}, {"version": 1}, -2, -1)
        for a in state
    ]
    names, at = list(state), 0.0
    for i in range(operations):
        at += rng.expovariate(1000)
        call, ret = at - rng.uniform(0, 0.004), at + rng.uniform(0, 0.004)
        if rng.random() < 0.3:
            source, target = rng.sample(names, 2)
            amount = rng.randint(1, 500)
            if state[source][0] >= amount:
                state[source][0] -= amount
                state[target][0] += amount
                state[source][1] += 1
                state[target][1] += 1
                output = {"from_version": state[source][1], "to_version": state[target][1]}
            else:
                output = {"rejected": "insufficient_funds"}
            input = {"op": "transfer", "from": source, "to": target, "amount": amount}
            history.append(Operation(i, input, output, call, ret))
        else:
            account = rng.choice(names)
            output = {"balance": state[account][0], "version": state[account][1]}
            history.append(Operation(i, {"op": "read", "account": account}, output, call, ret))
    return history


def cas_history(operations: int, overlap: float, seed: int = 2) -> list[Operation]:
    """One register, values 0–4: 40% reads, 10% writes, 50% compare-and-sets, one operation
    taking effect every millisecond, each interval stretching up to ``overlap`` s either side."""
    rng = random.Random(seed)
    value: int | None = None
    history = []
    for i in range(operations):
        at = i * 0.001
        call, ret = at - rng.uniform(0, overlap), at + rng.uniform(0, overlap)
        kind = rng.random()
        if kind < 0.4:
            history.append(Operation(i, {"op": "read", "key": "x"}, {"value": value}, call, ret))
        elif kind < 0.5:
            value = rng.randint(0, 4)
            input = {"op": "write", "key": "x", "value": value}
            history.append(Operation(i, input, {}, call, ret))
        else:
            expected, new = rng.randint(0, 4), rng.randint(0, 4)
            ok = value == expected
            value = new if ok else value
            input = {"op": "cas", "key": "x", "expected": expected, "value": new}
            history.append(Operation(i, input, {"ok": ok}, call, ret))
    return history


def bench_scheduling(console: Console, rate: float, seconds: float) -> None:
    config = LoadConfig(rate=rate, duration=seconds + 1, warmup=1.0, mix={"strong": 1}, accounts=10)
    with tempfile.TemporaryDirectory() as scratch, standin.running(Path(scratch) / "s.log") as url:
        cpu = time.process_time()
        result = asyncio.run(run_load(config, Endpoints(url), Console(file=io.StringIO())))
        cpu = time.process_time() - cpu
    lag = percentiles_ms(scheduling_lag(result))
    stats = kind_stats(result)["strong"]
    latency = percentiles_ms(stats.latency)
    console.print(
        f"[bold]scheduling at {rate:g}/s for {seconds:g} s[/] (after 1 s warm-up): "
        f"lag p50 {lag['p50']:.3f} ms, p99 {lag['p99']:.3f} ms, max {lag['max']:.3f} ms; "
        f"late starts (> 1 ms) {stats.late} of {sum(stats.outcomes.values())}; achieved "
        f"{stats.throughput:.0f}/s; errors {stats.errors}; latency p50 {latency['p50']:.2f} ms "
        f"p99 {latency['p99']:.2f} ms; generator CPU {cpu / len(result.records) * 1000:.3f} ms "
        f"per request"
    )


def bench_checker(console: Console) -> None:
    history = ledger_history(10_000, 100)
    started = time.perf_counter()
    result = check(LEDGER, history)
    console.print(
        f"[bold]checker, ledger[/]: {len(history)} operations over 100 accounts → "
        f"{result.verdict} in {time.perf_counter() - started:.3f} s"
    )
    for operations, overlap in ((200, 0.025), (400, 0.025), (400, 0.05)):
        history = cas_history(operations, overlap)
        started = time.perf_counter()
        result = check(KV, history, timeout=120)
        console.print(
            f"[bold]checker, single-key CAS[/]: {operations} operations, ±{overlap * 1000:g} ms "
            f"overlap (~{int(2 * overlap * 1000)} concurrent) → {result.verdict} in "
            f"{time.perf_counter() - started:.3f} s ({result.keys[0].configurations} search steps)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the lab (prints figures).")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    console = Console()
    load1, load5, _ = os.getloadavg()
    console.print(f"machine: {os.cpu_count()} CPUs, load average {load1:.1f} / {load5:.1f}")
    bench_scheduling(console, args.rate, args.seconds)
    bench_checker(console)


if __name__ == "__main__":
    main()
