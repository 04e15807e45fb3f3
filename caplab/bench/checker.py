"""Benchmark of the history checkers. Prints figures; asserts nothing.

1. Start-up of ``caplab check`` (a whole process on a tiny history).
2. Single-key search (``kv`` model): every history of the committed corpus
   ``tests/data/histories/kv/`` (``--corpus`` for another), search time per history and in
   total. With ``--porcupine SRC`` (a checkout of Porcupine's source), the driver
   ``porcupine_check.go`` is built against it in a scratch directory (Go toolchain needed,
   no network: ``GOPROXY=off``) and checks the same histories on one core (GOMAXPROCS=1),
   side by side. Target: total within 1.0× of Porcupine. ``--corpus DIR`` checks another
   directory: history files, or Jepsen etcd register logs such as Porcupine's
   ``test_data/jepsen/`` (converted on the fly into a scratch directory).
3. A hopeless key under ``--timeout 5``: how far past the deadline the answer comes, and
   the peak memory (the memo is bounded).
4. Strict serializability of a 100,000-operation ledger history shaped like a lab run (100
   accounts, 10% transfers, 2% of them of unknown outcome, strong reads, snapshots of every
   account): generated here, not stored. Target: ≤ 5 s on one core.

Run: ``make bench-checker`` (``PORCUPINE=/path/to/porcupine`` for the side by side), or
``python -m caplab.bench.checker``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loadtest.linearizability import (
    KV,
    Operation,
    check,
    check_ledger,
    dump_history,
    load_history,
)

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


def register_history(
    operations: int,
    processes: int = 8,
    crash: float = 0.03,
    stale_reads: int = 0,
    seed: int = 1,
) -> list[Operation]:
    """A Jepsen-style single-register history (one key, values 0–4): ``processes`` clients
    each issue one read, write or compare-and-set at a time; each takes effect at one instant
    inside its interval. A crashed operation (probability ``crash``) has no answer and its
    client is replaced by a new one, as Jepsen does; a crashed write or compare-and-set takes
    effect half of the time. ``stale_reads`` reads answer the value before the latest write
    that returned before they were invoked: each makes the history not linearizable."""
    rng = random.Random(seed)
    value: int | None = None
    previous: int | None = None  # the value before the latest write
    last_write_return = 0.0
    history: list[Operation] = []
    free_at = [0.0] * processes
    names = list(range(processes))
    next_name = processes
    stale_from = sorted(rng.sample(range(operations // 4, operations), stale_reads))
    at = 0.0
    for i in range(operations):
        # Linearization points in loop order; the client is one that is idle by then.
        at = max(at + rng.expovariate(1000), min(free_at) + 1e-6)
        slot = rng.choice([c for c in range(processes) if free_at[c] < at])
        call = rng.uniform(max(free_at[slot], at - 0.004), at)
        ret = at + rng.uniform(0, 0.004)
        crashed = rng.random() < crash
        kind = rng.random()
        if kind < 0.5:
            input: dict[str, object] = {"op": "read", "key": "x"}
            seen = value
            if stale_from and i >= stale_from[0] and previous != value and not crashed:
                # The value before a write that returned before this read was invoked.
                stale_from.pop(0)
                seen, call = previous, max(call, last_write_return + 1e-6)
                ret = max(ret, call)
            output: dict[str, object] | None = {"value": seen}
        elif kind < 0.75:
            new = rng.randint(0, 4)
            input = {"op": "write", "key": "x", "value": new}
            if not crashed or rng.random() < 0.5:
                previous, value = value, new
            output = {}
        else:
            expected, new = rng.randint(0, 4), rng.randint(0, 4)
            input = {"op": "cas", "key": "x", "expected": expected, "value": new}
            swapped = value == expected and (not crashed or rng.random() < 0.5)
            if swapped:
                previous, value = value, new
            output = {"ok": swapped}
        if kind >= 0.5 and not crashed:
            last_write_return = max(last_write_return, ret)
        if crashed:
            history.append(Operation(names[slot], input, None, round(call, 6), None))
            names[slot], next_name = next_name, next_name + 1
            free_at[slot] = call
        else:
            history.append(Operation(names[slot], input, output, round(call, 6), round(ret, 6)))
            free_at[slot] = ret
    return history


GENERATED = {
    # name: (operations, processes, crash probability, stale reads, seed)
    "register-8-clients": (300, 8, 0.03, 0, 1),
    "register-10-clients": (400, 10, 0.03, 0, 2),
    "register-600-ops": (600, 10, 0.03, 0, 3),
    "register-16-clients-crashy": (300, 16, 0.05, 0, 4),
    "register-800-ops": (800, 12, 0.02, 0, 8),
    "register-stale-read": (200, 5, 0.02, 1, 7),
    "register-stale-read-crashy": (500, 8, 0.03, 1, 12),
    "register-stale-read-500-ops": (500, 8, 0.03, 1, 9),
}
"""The generated part of the committed single-key corpus (``--write-corpus`` rewrites it)."""


def write_corpus() -> None:
    for name, (operations, processes, crash, stale, seed) in GENERATED.items():
        history = register_history(operations, processes, crash, stale, seed)
        result = check(KV, history, shrink_seconds=0)
        description = (
            f"Generated (caplab.bench.checker.register_history): {operations} operations of "
            f"{processes} clients on one register, crash probability {crash}, {stale} stale "
            f"read(s) injected, seed {seed}."
        )
        expected = {"exit": result.exit_status}
        document = dump_history(history, "kv", description=description, expected=expected)
        _write(CORPUS / "kv" / f"{name}.json", document)
        print(f"{name}: {result.verdict}")


def _write(path: Path, document: dict[str, object]) -> None:
    """One operation per line, so a reader can follow the file."""
    operations = document.pop("operations")
    assert isinstance(operations, list)
    head = json.dumps(document, indent=2)[:-2]
    body = ",\n".join("    " + json.dumps(op) for op in operations)
    path.write_text(head + ',\n  "operations": [\n' + body + "\n  ]\n}\n")


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_porcupine(source: Path, into: Path) -> Path:
    """Build the side-by-side driver (``porcupine_check.go``, ours) against Porcupine's source
    in ``source``, in the scratch directory ``into`` (outside the repository)."""
    (into / "main.go").write_text((Path(__file__).parent / "porcupine_check.go").read_text())
    (into / "go.mod").write_text(
        "module porcupinecheck\n\ngo 1.19\n\n"
        "require github.com/anishathalye/porcupine v1.3.1\n\n"
        f"replace github.com/anishathalye/porcupine => {source.resolve()}\n"
    )
    binary = into / "porcupine-check"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOWORK": "off"}
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=into, env=env, check=True)
    return binary


def _porcupine(binary: Path, history: Path, timeout: float) -> tuple[float, str]:
    """One history through Porcupine on one core: (search seconds, verdict)."""
    done = subprocess.run(
        [str(binary), str(history), f"{timeout}s"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GOMAXPROCS": "1"},
    )
    answer = json.loads(done.stdout)
    return float(answer["seconds"]), str(answer["verdict"])


_JEPSEN = re.compile(
    r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail)\s+:(read|write|cas)\s+(.*)$"
)


def jepsen_register_log(path: Path) -> list[Operation]:
    """A Jepsen etcd register log (the format of Porcupine's ``test_data/jepsen/``) as a
    history, read as Porcupine's own test reads it: times are line numbers, a read that timed
    out and an operation never answered have an unknown outcome."""
    operations: list[Operation] = []
    running: dict[str, tuple[dict[str, object], float]] = {}
    for line_number, line in enumerate(path.read_text().splitlines()):
        match = _JEPSEN.match(line)
        if match is None:
            continue
        process, event, kind, argument = match.groups()
        if event == "invoke":
            input: dict[str, object] = {"op": kind, "key": "x"}
            if kind == "write":
                input["value"] = int(argument)
            elif kind == "cas":
                expected, new = argument.strip("[]").split()
                input["expected"], input["value"] = int(expected), int(new)
            running[process] = (input, float(line_number))
            continue
        if process not in running:
            continue
        input, call = running.pop(process)
        output: dict[str, object] | None
        if kind == "read":
            output = (
                None
                if argument == ":timed-out"
                else {"value": None if argument == "nil" else int(argument)}
            )
        else:
            output = {"ok": event == "ok"} if kind == "cas" else {}
        returned = None if output is None else float(line_number)
        operations.append(Operation(int(process), input, output, call, returned))
    for process, (input, call) in running.items():
        operations.append(Operation(int(process), input, None, call, None))
    return operations


def _corpus(directory: Path, scratch: Path) -> list[Path]:
    """The corpus' history files; Jepsen logs are converted into ``scratch`` first."""
    files = sorted(directory.glob("*.json"))
    for log in sorted(directory.glob("*.log")):
        converted = scratch / f"{log.stem}.json"
        converted.write_text(json.dumps(dump_history(jepsen_register_log(log), "kv")))
        files.append(converted)
    return files


def bench_single_key(corpus: Path, porcupine: Path | None, timeout: float, scratch: Path) -> None:
    """Search time per history (no counterexample shrinking, as Porcupine's check)."""
    files = _corpus(corpus, scratch)
    ours_total = theirs_total = 0.0
    print(f"single-key corpus: {len(files)} histories in {corpus}")
    header = f"  {'history':<30} {'ops':>5} {'verdict':<17} {'caplab s':>9}"
    print(header + (f" {'porcupine s':>11} {'ratio':>6}" if porcupine else ""))
    for path in files:
        history = load_history(path)
        started = time.perf_counter()
        result = check(KV, history.operations, timeout, shrink_seconds=0)
        ours = time.perf_counter() - started
        ours_total += ours
        line = (
            f"  {path.stem:<30} {len(history.operations):>5} {result.verdict.name:<17} {ours:>9.4f}"
        )
        if porcupine:
            theirs, verdict = _porcupine(porcupine, path, timeout)
            theirs_total += theirs
            agree = "" if verdict == result.verdict.name else f"  porcupine: {verdict}"
            line += f" {theirs:>11.4f} {ours / theirs:>6.2f}{agree}"
        print(line)
    total = f"  total: caplab {ours_total:.3f} s"
    if porcupine:
        total += f", porcupine {theirs_total:.3f} s (ratio {ours_total / theirs_total:.2f})"
    print(total + f" (each history's search bounded at {timeout:g} s)")


def bench_timeout() -> None:
    """A hopeless key (24 concurrent writes and a read of a value none wrote) with a 5 s
    budget: how far past the deadline the answer comes, and the memory the memo took."""
    writes = [
        Operation(i, {"op": "write", "key": "h", "value": i}, {}, 0.0, 100.0) for i in range(24)
    ]
    read = Operation(99, {"op": "read", "key": "h"}, {"value": 999}, 101.0, 102.0)
    before = _max_rss_mib()
    started = time.perf_counter()
    result = check(KV, [*writes, read], timeout=5.0)
    elapsed = time.perf_counter() - started
    (key,) = result.keys
    print(
        f"timeout: a hopeless key with --timeout 5 answered {result.verdict.name} after "
        f"{elapsed:.3f} s ({elapsed - 5:+.3f} s past the deadline), {key.configurations:,} "
        f"configurations, partial linearization of {len(key.partial)}/{key.operations}; peak "
        f"memory {_max_rss_mib():.0f} MiB (before {before:.0f} MiB)"
    )


def bench_startup() -> None:
    """Wall time of ``caplab check`` on a two-operation history, imports included."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "h.json"
        ops = [
            Operation(0, {"op": "write", "key": "x", "value": 1}, {}, 0.0, 1.0),
            Operation(1, {"op": "read", "key": "x"}, {"value": 1}, 2.0, 3.0),
        ]
        path.write_text(json.dumps(dump_history(ops, "kv")))
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "caplab.cli", "check", str(path)],
                check=True,
                capture_output=True,
            )
            runs.append(time.perf_counter() - started)
    print(f"caplab check start-up: {min(runs):.3f} s (best of 5, whole process)")


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
        "--porcupine",
        type=Path,
        help="Porcupine's source directory: also check the corpus with it, side by side",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=CORPUS / "kv",
        help="directory of histories (*.json) or Jepsen etcd register logs (*.log)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per history, s")
    parser.add_argument("--ledger-operations", type=int, default=100_000)
    parser.add_argument(
        "--write-corpus", action="store_true", help="rewrite the generated corpus and stop"
    )
    args = parser.parse_args()
    if args.write_corpus:
        write_corpus()
        return
    load1, load5, _ = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load1:.1f} / {load5:.1f}")
    bench_startup()
    with tempfile.TemporaryDirectory() as scratch:
        binary = build_porcupine(args.porcupine, Path(scratch)) if args.porcupine else None
        bench_single_key(args.corpus, binary, args.timeout, Path(scratch))
    bench_timeout()
    bench_ledger(args.ledger_operations)


if __name__ == "__main__":
    main()
