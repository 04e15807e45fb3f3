"""The linearizability search for one object's history (Wing & Gong, with Lowe's memoization).

Hand-written because it is the lesson: this is the algorithm Porcupine implements
(``checkSingle``). The history becomes a time-ordered list of call and return events (a call
sorts before a return at the same instant, so touching operations count as concurrent). The
search walks the list: at a call it tries to linearize that operation now (the model's
``step`` accepts its output in the current state); if so it removes the call and its return
from the list and starts again from the head; reaching a return means the operation that
returns there was not linearized in time, so it backtracks (undoes the latest linearization
and tries the next candidate). Every (set of linearized operations, state) configuration is
visited at most once: that memo is what makes the exponential search fast in practice.
One pruning of our own: an enabled read-only operation that fits the current state is
linearized at once and never branched on (see the comment in the loop for why it is sound).

Pending operations (unknown outcome) return "at infinity": they may be linearized anywhere
after their call, and the search succeeds as soon as every completed operation is linearized
(a pending one may also never have taken effect).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from loadtest.linearizability.history import Operation
from loadtest.linearizability.model import Model

_TIME_CHECK_EVERY = 1024


class Verdict(StrEnum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown (search timed out)"


@dataclass(frozen=True)
class SearchResult:
    verdict: Verdict
    # The longest prefix of a linearization found (indices into the searched operations, in
    # linearization order) and the state after it: on failure, where the search got stuck.
    longest_linearization: tuple[int, ...]
    state_after_longest: Hashable
    configurations: int


def search(
    model: Model, operations: Sequence[Operation], deadline: float = math.inf
) -> SearchResult:
    """Whether ``operations`` (one object's history) is linearizable under ``model``.

    ``deadline`` is a ``time.monotonic()`` instant after which the verdict is UNKNOWN.
    """
    n = len(operations)
    # Events 1..2n between a head (0) and a tail (2n+1) sentinel, as a doubly linked list.
    events: list[tuple[float, int, int]] = []  # (time, 0=call/1=return, operation)
    for i, op in enumerate(operations):
        events.append((op.call, 0, i))
        events.append((math.inf if op.return_time is None else op.return_time, 1, i))
    events.sort()
    head, tail = 0, 2 * n + 1
    nxt = [*range(1, 2 * n + 2), tail]
    prv = [head, *range(0, 2 * n + 1)]
    is_call = [False] * (2 * n + 2)
    op_of = [0] * (2 * n + 2)
    match = [0] * (2 * n + 2)
    call_event = [0] * n
    for position, (_, kind, i) in enumerate(events, start=1):
        op_of[position] = i
        if kind == 0:
            is_call[position] = True
            call_event[i] = position
        else:
            match[call_event[i]] = position
    inputs = [op.input for op in operations]
    pending = [op.pending for op in operations]
    outputs = [None if op.pending else op.output for op in operations]
    completed_total = pending.count(False)

    step = model.step
    read_only = [model.read_only(op.input, outputs[i]) for i, op in enumerate(operations)]

    def lift(event: int) -> None:
        ret = match[event]
        nxt[prv[event]], prv[nxt[event]] = nxt[event], prv[event]
        nxt[prv[ret]], prv[nxt[ret]] = nxt[ret], prv[ret]

    def unlift(event: int) -> None:
        ret = match[event]
        nxt[prv[ret]] = prv[nxt[ret]] = ret
        nxt[prv[event]] = prv[nxt[event]] = event

    state = model.init()
    linearized = 0
    completed_linearized = 0
    seen: set[tuple[int, Hashable]] = set()
    stack: list[tuple[int, Hashable, bool]] = []  # (call event, state before it, forced)
    best: tuple[int, ...] = ()
    best_state = state
    configurations = 0
    entry = head
    while completed_linearized < completed_total:
        configurations += 1
        if configurations % _TIME_CHECK_EVERY == 0 and time.monotonic() > deadline:
            return SearchResult(Verdict.UNKNOWN, best, best_state, configurations)
        chosen, forced, new_state = 0, False, state
        if entry == head:
            # A fresh configuration. An enabled read-only operation that fits the state can be
            # linearized now without trying alternatives: in any successful completion it can
            # move to the front (nothing enabled must precede it, and it changes no state).
            entry = nxt[head]
            candidate = entry
            while is_call[candidate]:
                i = op_of[candidate]
                if read_only[i] and step(state, inputs[i], outputs[i])[0]:
                    chosen, forced = candidate, True
                    break
                candidate = nxt[candidate]
        if not chosen and is_call[entry]:
            i = op_of[entry]
            if not read_only[i]:  # read-only ones that fit were taken above
                ok, new_state = step(state, inputs[i], outputs[i])
                if ok:
                    chosen = entry
            if not chosen:
                entry = nxt[entry]
                continue
        if chosen:
            i = op_of[chosen]
            key = (linearized | (1 << i), new_state)
            if key not in seen:
                seen.add(key)
                stack.append((chosen, state, forced))
                state, linearized = new_state, key[0]
                completed_linearized += not pending[i]
                if len(stack) > len(best):
                    best = tuple(op_of[e] for e, _, _ in stack)
                    best_state = state
                lift(chosen)
                entry = head
                continue
            if not forced:
                entry = nxt[entry]
                continue
            # A forced move into a configuration already refuted refutes this one too.
        # Backtrack: undo linearizations up to the latest one that was a real choice.
        while True:
            if not stack:
                return SearchResult(Verdict.NOT_LINEARIZABLE, best, best_state, configurations)
            event, state, forced = stack.pop()
            i = op_of[event]
            linearized &= ~(1 << i)
            completed_linearized -= not pending[i]
            unlift(event)
            if not forced:
                entry = nxt[event]
                break
    return SearchResult(Verdict.LINEARIZABLE, best, best_state, configurations)
