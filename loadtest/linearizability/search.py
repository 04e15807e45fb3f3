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
Two prunings of our own (see the comments in the loop for why they are sound): an enabled
read-only operation that fits the current state is linearized at once and never branched on;
an operation of unknown outcome that would leave the state as it is is not linearized there.

Pending operations (unknown outcome) return "at infinity": they may be linearized anywhere
after their call, and the search succeeds as soon as every completed operation is linearized
(a pending one may also never have taken effect).

The search is a generator that pauses every 1,024 configurations, so several keys can share
one time budget (:mod:`loadtest.linearizability.check`) and a deadline is honoured within a
fraction of a second; its memo is bounded (:data:`DEFAULT_MEMO_LIMIT`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from loadtest.linearizability.history import Operation
from loadtest.linearizability.model import Model

_TIME_CHECK_EVERY = 1024
DEFAULT_MEMO_LIMIT = 1_000_000
"""Configurations remembered per key (about 100–250 bytes each, depending on the history's
length): beyond it the older half is forgotten. Forgetting is sound, since the memo only
prunes configurations already refuted; it costs repeated work, never a wrong verdict."""


class Verdict(StrEnum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown (search timed out)"


@dataclass(frozen=True)
class SearchResult:
    verdict: Verdict
    # The longest prefix of a linearization found (indices into the searched operations, in
    # linearization order) and the state after it: on failure, where the search got stuck;
    # on a timeout, the partial linearization reached.
    longest_linearization: tuple[int, ...]
    state_after_longest: Hashable
    configurations: int


class Search:
    """One key's search, resumable: :meth:`run` advances it until a verdict or an instant."""

    def __init__(
        self, model: Model, operations: Sequence[Operation], memo_limit: int = DEFAULT_MEMO_LIMIT
    ) -> None:
        self.best: tuple[int, ...] = ()
        self.best_state: Hashable = model.init()
        self.configurations = 0
        self.memo_size = 0
        self.result: SearchResult | None = None
        self._steps = self._search(model, operations, max(2, memo_limit))

    def run(self, until: float = math.inf) -> SearchResult | None:
        """The verdict, or None if ``until`` (a ``time.monotonic()`` instant) came first."""
        while self.result is None:
            try:
                next(self._steps)
            except StopIteration as done:
                self.result = done.value
                break
            if time.monotonic() >= until:
                return None
        return self.result

    def unknown(self) -> SearchResult:
        """Where the search stands: its longest partial linearization so far."""
        return SearchResult(Verdict.UNKNOWN, self.best, self.best_state, self.configurations)

    def _search(
        self, model: Model, operations: Sequence[Operation], memo_limit: int
    ) -> Generator[None, None, SearchResult]:
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
        # The memo in two generations: when the newer one is full it becomes the older one
        # and the previous older one is dropped, so at most memo_limit entries are kept.
        seen: set[tuple[int, Hashable]] = set()
        older: set[tuple[int, Hashable]] = set()
        generation = memo_limit // 2
        stack: list[tuple[int, Hashable, bool]] = []  # (call event, state before it, forced)
        # The longest linearization so far, kept incrementally: best[:synced] is known to
        # equal the stack's bottom, so growing past it copies only what changed.
        best: list[int] = []
        synced = 0
        configurations = 0
        entry = head
        while completed_linearized < completed_total:
            configurations += 1
            if configurations % _TIME_CHECK_EVERY == 0:
                self.configurations = configurations
                self.memo_size = len(seen) + len(older)
                self.best = tuple(best)
                yield
            chosen, forced, new_state = 0, False, state
            if entry == head:
                # A fresh configuration. An enabled read-only operation that fits the state can
                # be linearized now without trying alternatives: in any successful completion it
                # can move to the front (nothing enabled must precede it, and it changes no
                # state).
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
                    # A pending operation that would change nothing here is never worth
                    # linearizing here: leaving it out (it may never have taken effect)
                    # reaches everything linearizing it reaches.
                    if ok and not (pending[i] and new_state == state):
                        chosen = entry
                if not chosen:
                    entry = nxt[entry]
                    continue
            if chosen:
                i = op_of[chosen]
                key = (linearized | (1 << i), new_state)
                if key not in seen and key not in older:
                    seen.add(key)
                    if len(seen) >= generation:
                        older, seen = seen, set()
                    stack.append((chosen, state, forced))
                    state, linearized = new_state, key[0]
                    completed_linearized += not pending[i]
                    if len(stack) > len(best):
                        best[synced:] = [op_of[e] for e, _, _ in stack[synced:]]
                        synced = len(stack)
                        self.best_state = state
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
                    self.configurations = configurations
                    self.best = tuple(best)
                    return SearchResult(
                        Verdict.NOT_LINEARIZABLE, self.best, self.best_state, configurations
                    )
                event, state, forced = stack.pop()
                synced = min(synced, len(stack))
                i = op_of[event]
                linearized &= ~(1 << i)
                completed_linearized -= not pending[i]
                unlift(event)
                if not forced:
                    entry = nxt[event]
                    break
        self.configurations = configurations
        self.best = tuple(best)
        return SearchResult(Verdict.LINEARIZABLE, self.best, self.best_state, configurations)


def search(
    model: Model,
    operations: Sequence[Operation],
    deadline: float = math.inf,
    memo_limit: int = DEFAULT_MEMO_LIMIT,
) -> SearchResult:
    """Whether ``operations`` (one object's history) is linearizable under ``model``.

    ``deadline`` is a ``time.monotonic()`` instant after which the verdict is UNKNOWN.
    """
    searching = Search(model, operations, memo_limit)
    return searching.run(deadline) or searching.unknown()
