"""Check a whole history: split it by key, search each key, explain the first failures.

A failing key gets a *minimal counterexample*, shrunk in two steps that both keep a
non-linearizable history non-linearizable (so the counterexample is still a proof):

1. the shortest prefix: cut the history at the earliest return time at which it is already
   not linearizable (operations still running at the cut become pending: they may or may not
   have taken effect). Failure is monotone in the cut, so this is a binary search;
2. drop read-only operations one by one (chunks first) while it still fails: removing an
   operation that never changes the state cannot make a linearizable history out of a
   non-linearizable one.

The result is minimal in that sense (no shorter prefix, no removable read); writes are never
dropped because removing a write can turn a correct read into a wrong one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from loadtest.linearizability.history import Json, Operation, renumber
from loadtest.linearizability.model import Model
from loadtest.linearizability.search import (
    DEFAULT_MEMO_LIMIT,
    Search,
    SearchResult,
    Verdict,
    search,
)

DEFAULT_SHRINK_SECONDS = 10.0


@dataclass(frozen=True)
class Counterexample:
    """A failing key's shrunk sub-history and where the search got stuck in it."""

    key: Hashable
    operations: tuple[Operation, ...]
    linearized: tuple[Operation, ...]
    stuck_state: Hashable
    candidates: tuple[Operation, ...]
    minimal: bool

    def lines(self, model: Model) -> list[str]:
        """A human explanation: the operations, then the longest linearization and why the
        operations that could come next cannot."""
        t0 = min(op.call for op in self.operations)

        def when(op: Operation) -> str:
            end = "…" if op.return_time is None else f"{op.return_time - t0:.6f}"
            return f"[{op.call - t0:.6f}, {end}]"

        def text(op: Operation) -> str:
            return model.describe_operation(op.input, None if op.pending else op.output)

        lines = [
            f"key {self.key!r}: {len(self.operations)} operations cannot be linearized"
            + ("" if self.minimal else " (shrinking stopped at its time budget)")
        ]
        lines += [f"  client {op.client!s:>6} {when(op):>24}  {text(op)}" for op in self.operations]
        order = " ; ".join(text(op) for op in self.linearized) or "(nothing)"
        lines.append(f"  longest linearization: {order}")
        lines.append(f"  then the state is {model.describe_state(self.stuck_state)}, and none of")
        lines += [f"    {text(op)}" for op in self.candidates]
        lines.append("  can take effect next while respecting real time.")
        return lines

    def to_json(self, model: Model) -> dict[str, Json]:
        return {
            "key": str(self.key),
            "operations": [op.to_json() for op in self.operations],
            "longest_linearization": [op.to_json() for op in self.linearized],
            "stuck_state": model.describe_state(self.stuck_state),
            "explanation": self.lines(model),
            "minimal": self.minimal,
        }


@dataclass(frozen=True)
class KeyResult:
    key: Hashable
    verdict: Verdict
    operations: int
    configurations: int
    partial: tuple[Operation, ...] = ()  # UNKNOWN: the longest partial linearization found


@dataclass(frozen=True)
class CheckResult:
    model: Model
    verdict: Verdict
    keys: tuple[KeyResult, ...]
    counterexamples: tuple[Counterexample, ...]
    seconds: float
    operations: int = field(default=0)
    unchecked: int = field(default=0)  # keys left once one was found not linearizable

    @property
    def exit_status(self) -> int:
        return {Verdict.LINEARIZABLE: 0, Verdict.NOT_LINEARIZABLE: 2, Verdict.UNKNOWN: 3}[
            self.verdict
        ]

    def failing_keys(self) -> list[Hashable]:
        return [k.key for k in self.keys if k.verdict is Verdict.NOT_LINEARIZABLE]

    def headline(self) -> str:
        return str(self.verdict)

    def coverage(self) -> str:
        unchecked = f" ({self.unchecked} left unchecked)" if self.unchecked else ""
        return (
            f"{self.operations} operations, {len(self.keys)} keys{unchecked}, checked in "
            f"{self.seconds:.3f} s"
        )

    def lines(self) -> list[str]:
        out = []
        failing = self.failing_keys()
        if failing:
            out.append(f"not linearizable: key {', '.join(map(str, failing))}")
        for example in self.counterexamples:
            out += example.lines(self.model)
        for k in self.keys:
            if k.verdict is Verdict.UNKNOWN:
                shown = " ; ".join(
                    self.model.describe_operation(op.input, None if op.pending else op.output)
                    for op in k.partial[:_PARTIAL_SHOWN]
                )
                more = " ; …" if len(k.partial) > _PARTIAL_SHOWN else ""
                out.append(
                    f"key {k.key!r}: undecided after {k.configurations} configurations; longest "
                    f"partial linearization {len(k.partial)} of {k.operations} operations: "
                    f"{shown or '(nothing)'}{more}"
                )
        return out

    def to_json(self) -> dict[str, Json]:
        return {
            "model": self.model.name,
            "property": "linearizability",
            "verdict": str(self.verdict),
            "seconds": round(self.seconds, 6),
            "operations": self.operations,
            "keys": {str(k.key): str(k.verdict) for k in self.keys},
            "unchecked_keys": self.unchecked,
            "counterexamples": [c.to_json(self.model) for c in self.counterexamples],
            "partial_linearizations": {
                str(k.key): [op.to_json() for op in k.partial]
                for k in self.keys
                if k.verdict is Verdict.UNKNOWN
            },
        }


_PARTIAL_SHOWN = 12
FIRST_SLICE = 0.05
"""Seconds each key may search in the first round; the slice doubles every round."""


def partition(model: Model, operations: Sequence[Operation]) -> dict[Hashable, list[Operation]]:
    """Per-key sub-histories, each in the original order and renumbered from 0."""
    by_key: dict[Hashable, list[Operation]] = {}
    for op in operations:
        for key, restricted in model.partition(op):
            by_key.setdefault(key, []).append(restricted)
    return {key: renumber(ops) for key, ops in by_key.items()}


def _as_pending(op: Operation) -> Operation:
    return Operation(op.client, op.input, None, op.call, None, op.index)


def _prefix(operations: Sequence[Operation], cut: float) -> list[Operation]:
    return renumber(
        [
            op if op.return_time is not None and op.return_time <= cut else _as_pending(op)
            for op in operations
            if op.call <= cut
        ]
    )


def _fails(model: Model, operations: Sequence[Operation], deadline: float) -> bool:
    return search(model, renumber(operations), deadline).verdict is Verdict.NOT_LINEARIZABLE


def shrink(
    model: Model, key: Hashable, operations: Sequence[Operation], seconds: float
) -> Counterexample:
    """The minimal counterexample within ``operations`` (known not to be linearizable)."""
    deadline = time.monotonic() + seconds
    cuts = sorted({op.return_time for op in operations if op.return_time is not None})
    low, high = 0, len(cuts) - 1  # the prefix at cuts[high] fails (it is the whole history)
    while low < high and time.monotonic() < deadline:
        middle = (low + high) // 2
        if _fails(model, _prefix(operations, cuts[middle]), deadline):
            high = middle
        else:
            low = middle + 1
    current = _prefix(operations, cuts[high])
    current = [op for op in current if not (op.pending and model.read_only(op.input, None))]
    minimal = low >= high
    chunk = max(1, len(current) // 2)
    while minimal:
        removed_any = False
        start = 0
        while start < len(current):
            if time.monotonic() > deadline:
                minimal = False
                break
            window = current[start : start + chunk]
            if all(model.read_only(op.input, op.output) for op in window):
                trial = current[:start] + current[start + chunk :]
                if _fails(model, trial, deadline):
                    current, removed_any = trial, True
                    continue
            start += chunk
        if chunk == 1 and not removed_any:
            break
        chunk = max(1, chunk // 2)
    final = renumber(current)
    result = search(model, final, math.inf if minimal else deadline)
    return _counterexample(key, final, result, minimal)


def _counterexample(
    key: Hashable, ops: list[Operation], result: SearchResult, minimal: bool
) -> Counterexample:
    linearized = set(result.longest_linearization)
    remaining = [op for op in ops if op.index not in linearized]
    first_return = min(
        (op.return_time for op in remaining if op.return_time is not None), default=math.inf
    )
    return Counterexample(
        key=key,
        operations=tuple(sorted(ops, key=lambda op: op.call)),
        linearized=tuple(ops[i] for i in result.longest_linearization),
        stuck_state=result.state_after_longest,
        candidates=tuple(op for op in remaining if op.call <= first_return),
        minimal=minimal,
    )


def check(
    model: Model,
    operations: Sequence[Operation],
    timeout: float | None = None,
    shrink_seconds: float = DEFAULT_SHRINK_SECONDS,
    memo_limit: int = DEFAULT_MEMO_LIMIT,
) -> CheckResult:
    """Check ``operations`` against ``model`` key by key (P-compositionality).

    Keys are searched in rounds: each undecided key gets a slice of time (doubling every
    round, never more than a fair share of what is left of ``timeout``), so one hard key
    cannot starve the others. The first key found not linearizable ends the check with its
    shrunk counterexample (shrinking stops at the deadline; ``shrink_seconds=0``: the key's
    whole history, unshrunk); keys still undecided at the deadline are UNKNOWN, each with its
    longest partial linearization.
    """
    started = time.monotonic()
    deadline = math.inf if timeout is None else started + timeout
    parts = partition(model, operations)
    searches: dict[Hashable, Search] = {}
    decided: dict[Hashable, SearchResult] = {}
    failing: Hashable | None = None
    slice_seconds = FIRST_SLICE
    while failing is None and len(decided) < len(parts):
        undecided = [key for key in parts if key not in decided]
        for position, key in enumerate(undecided):
            now = time.monotonic()
            if now >= deadline:
                break
            share = min(slice_seconds, (deadline - now) / (len(undecided) - position))
            searching = searches.get(key)
            if searching is None:
                searching = searches[key] = Search(model, parts[key], memo_limit)
            result = searching.run(now + share)
            if result is None:
                continue
            decided[key] = result
            del searches[key]  # its memo goes with it
            if result.verdict is Verdict.NOT_LINEARIZABLE:
                failing = key
                break
        if time.monotonic() >= deadline:
            break
        slice_seconds *= 2
    keys = [
        KeyResult(key, r.verdict, len(parts[key]), r.configurations) for key, r in decided.items()
    ]
    if failing is None:
        # Undecided keys, including any the deadline came before, are UNKNOWN: a key never
        # searched is not a key found linearizable.
        for key, ops in parts.items():
            if key in decided:
                continue
            searching = searches.get(key)
            partial = searching.unknown() if searching else None
            keys.append(
                KeyResult(
                    key,
                    Verdict.UNKNOWN,
                    len(ops),
                    partial.configurations if partial else 0,
                    tuple(ops[i] for i in partial.longest_linearization) if partial else (),
                )
            )
    examples: tuple[Counterexample, ...] = ()
    if failing is not None:
        budget = min(shrink_seconds, max(0.0, deadline - time.monotonic()))
        ops = parts[failing]
        examples = (
            shrink(model, failing, ops, budget)
            if budget > 0
            else _counterexample(failing, ops, decided[failing], minimal=False),
        )
    verdicts = {k.verdict for k in keys}
    verdict = next(
        (v for v in (Verdict.NOT_LINEARIZABLE, Verdict.UNKNOWN) if v in verdicts),
        Verdict.LINEARIZABLE,
    )
    unchecked = len(parts) - len(keys)
    return CheckResult(
        model,
        verdict,
        tuple(keys),
        examples,
        time.monotonic() - started,
        len(operations),
        unchecked,
    )
