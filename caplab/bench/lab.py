"""Benchmark of the lab's generator. Prints figures; asserts nothing.

Scheduling accuracy: open-loop strong reads at ``--rate`` (default 1,000/s) for ``--seconds``
against the stand-in ledger (a trivial local endpoint in its own process): scheduling lag
p50/p99/max (intended start → actual send), late starts, achieved rate, and the generator's
CPU per request. Target: lag p99 ≤ 2 ms on 2 cores. The checkers have their own benchmark:
``make bench-checker`` (:mod:`caplab.bench.checker`).

Run: ``make bench-lab`` (or ``python -m caplab.bench.lab --rate 1000 --seconds 5``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console

from caplab.local import standin
from loadtest.config import LoadConfig
from loadtest.runner import Endpoints, run_load
from loadtest.stats import kind_stats, percentiles_ms, scheduling_lag


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


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the lab (prints figures).")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    console = Console()
    load1, load5, _ = os.getloadavg()
    console.print(f"machine: {os.cpu_count()} CPUs, load average {load1:.1f} / {load5:.1f}")
    bench_scheduling(console, args.rate, args.seconds)


if __name__ == "__main__":
    main()
