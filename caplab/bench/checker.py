"""Benchmark of the history checkers. Prints figures; asserts nothing.

1. Single-key search (``kv`` model): every history of the committed corpus
   ``tests/data/histories/kv/`` (Jepsen-style registers: reads, writes, compare-and-sets,
   crashed operations, many clients), time per history and in total. With ``--porcupine
   DIR``, the same corpus is also checked by Porcupine's Go implementation, built in DIR from
   the Go module (see docs/checker.md), and both are printed side by side.
2. Strict serializability of a 100,000-operation ledger history shaped like a lab run (100
   accounts, 10% transfers, 2% of them of unknown outcome, strong reads and snapshots of every
   account): generated here, not stored. Target: ≤ 5 s on one core.

Run: ``make bench-checker`` (or ``python -m caplab.bench.checker``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import time
from pathlib import Path

from loadtest.linearizability import KV, Operation, check, check_ledger, load_history

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "histories"


def ledger_history(
    operations: int,
    accounts: int = 100,
    transfers: float = 0.10,
    snapshots: float = 0.02,
    unknown: float = 0.02,
    writers: bool = True,
    seed: int = 1,
) -> list[Operation]:
    """A history a correct ledger could produce, shaped like a lab run.

    Each operation takes effect at one instant inside its [call, return] interval (arrivals
    Poisson at 1,000/s, up to 4 ms either side). A transfer of unknown outcome has no return
    and no answer; half of them committed anyway (their effect is visible to later reads).
    With ``writers``, reads name the writer of each version as the ledger reports it (the id of
    a transfer of unknown outcome is one the history does not know).
    """
    rng = random.Random(seed)
    names = [f"a{i:03d}" for i in range(accounts)]
    state = {a: [10_000, 1, "create"] for a in names}
    history = [
        Operation(
            "setup", {"op": "create", "account": a, "balance": 10_000}, {"version": 1}, -2, -1
        )
        for a in names
    ]

    def seen(account: str) -> dict[str, object]:
        balance, version, writer = state[account]
        entry: dict[str, object] = {"balance": balance, "version": version}
        if writers:
            entry["writer"] = writer
        return entry

    at = 0.0
    for i in range(operations):
        at += rng.expovariate(1000)
        call, ret = at - rng.uniform(0, 0.004), at + rng.uniform(0, 0.004)
        client = i % 64
        kind = rng.random()
        if kind < transfers:
            source, target = rng.sample(names, 2)
            amount = rng.randint(1, 500)
            input = {"op": "transfer", "from": source, "to": target, "amount": amount}
            ident = f"t{i}"
            lost = rng.random() < unknown
            commits = state[source][0] >= amount and (not lost or rng.random() < 0.5)
            if commits:
                state[source] = [state[source][0] - amount, state[source][1] + 1, ident]
                state[target] = [state[target][0] + amount, state[target][1] + 1, ident]
            if lost:
                history.append(Operation(client, input, None, call, None))
            elif commits:
                output = {
                    "id": ident,
                    "from_version": state[source][1],
                    "to_version": state[target][1],
                }
                history.append(Operation(client, input, output, call, ret))
            else:
                history.append(
                    Operation(client, input, {"rejected": "insufficient_funds"}, call, ret)
                )
        elif kind < transfers + snapshots:
            output = {"accounts": {a: seen(a) for a in names}}
            input = {"op": "snapshot", "accounts": names}
            history.append(Operation(client, input, output, call, ret))
        else:
            account = rng.choice(names)
            input = {"op": "read", "account": account}
            history.append(Operation(client, input, seen(account), call, ret))
    return history


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_single_key(porcupine: Path | None) -> None:
    files = sorted((CORPUS / "kv").glob("*.json"))
    ours_total = theirs_total = 0.0
    print(f"single-key corpus: {len(files)} histories in {CORPUS / 'kv'}")
    header = f"  {'history':<34} {'ops':>6} {'verdict':<17} {'caplab s':>9}"
    print(header + (f" {'porcupine s':>11} {'ratio':>6}" if porcupine else ""))
    for path in files:
        history = load_history(path)
        started = time.perf_counter()
        result = check(KV, history.operations)
        ours = time.perf_counter() - started
        ours_total += ours
        line = f"  {path.stem:<34} {len(history.operations):>6} {result.verdict!s:<17} {ours:>9.4f}"
        if porcupine:
            theirs, verdict = _porcupine(porcupine, path)
            theirs_total += theirs
            agree = "" if verdict == result.verdict.name else f" (porcupine: {verdict})"
            line += f" {theirs:>11.4f} {ours / theirs if theirs else float('nan'):>6.2f}{agree}"
        print(line)
    print(f"  total: caplab {ours_total:.3f} s", end="")
    if porcupine:
        print(f", porcupine {theirs_total:.3f} s, ratio {ours_total / theirs_total:.2f}", end="")
    print()


def _porcupine(directory: Path, history: Path) -> tuple[float, str]:
    """Run the Porcupine driver built in ``directory`` on one history: (seconds, verdict)."""
    done = subprocess.run(
        [str(directory / "porcupine-check"), str(history)],
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout)
    return float(answer["seconds"]), str(answer["verdict"])


def bench_ledger(operations: int) -> None:
    started = time.perf_counter()
    history = ledger_history(operations)
    generated = time.perf_counter() - started
    before = _max_rss_mib()
    cpu = time.process_time()
    started = time.perf_counter()
    result = check_ledger(history)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    print(
        f"ledger, strict serializability: {len(history):,} operations over 100 accounts "
        f"(generated in {generated:.2f} s) → {result.headline()} in {seconds:.2f} s "
        f"({cpu:.2f} s CPU); peak memory {_max_rss_mib():.0f} MiB (before the check "
        f"{before:.0f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the history checkers.")
    parser.add_argument(
        "--porcupine", type=Path, help="directory with a built porcupine-check driver"
    )
    parser.add_argument("--ledger-operations", type=int, default=100_000)
    args = parser.parse_args()
    load1, load5, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load1:.1f} / {load5:.1f}")
    bench_single_key(args.porcupine)
    bench_ledger(args.ledger_operations)


if __name__ == "__main__":
    main()
