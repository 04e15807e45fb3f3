"""Benchmark: cold ``caplab emulators up`` until every emulator is ready and bootstrapped.

Runs the stack ``--runs`` times on free ports in a fresh state directory each time and prints
the median total time, each emulator's own launch-to-ready time, and each emulator's idle
memory (RSS summed over its process group) a moment after start-up. Target: all ready in
≤ 10 s on a 2-core machine. A benchmark prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from caplab.core.clients import quiet_emulator_notices
from emulators import manager


def _group_rss_mib(pgid: int) -> float:
    total_kib = 0
    for pid in manager._group_members(pgid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def one_run(settle_seconds: float) -> tuple[float, dict[str, float], dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="caplab-bench-") as home:
        environ = dict(os.environ, CAPLAB_HOME=home)
        config = manager.StackConfig.from_environ(environ, port_overrides=manager.free_ports())
        try:
            started = time.monotonic()
            result = manager.up(config)
            total = time.monotonic() - started
            time.sleep(settle_seconds)
            memory = {}
            for spec in config.emulators:
                state = manager.EmulatorState.load(config.state_path(spec))
                memory[spec.name] = _group_rss_mib(state.pgid) if state else float("nan")
        finally:
            manager.down(config)
    return total, result.ready_seconds, memory


def main() -> None:
    parser = argparse.ArgumentParser(description="Cold `caplab emulators up` benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading RSS")
    args = parser.parse_args()
    quiet_emulator_notices()
    console = Console()
    runs = []
    for index in range(args.runs):
        runs.append(one_run(args.settle))
        console.print(f"run {index + 1}: all ready and bootstrapped in {runs[-1][0]:.2f}s")
    table = Table(title=f"cold `caplab emulators up`, median of {args.runs} runs")
    for column in ("emulator", "launch → ready (s)", "idle RSS (MiB)"):
        table.add_column(column, justify="right")
    for name in runs[0][1]:
        table.add_row(
            name,
            f"{statistics.median(r[1][name] for r in runs):.2f}",
            f"{statistics.median(r[2][name] for r in runs):.0f}",
        )
    table.add_row("all (incl. bootstrap)", f"{statistics.median(r[0] for r in runs):.2f}", "")
    console.print(table)
    console.print(f"cores: {os.cpu_count()}; target: all ready ≤ 10 s")


if __name__ == "__main__":
    main()
