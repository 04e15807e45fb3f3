"""A sequential specification, in the shape Porcupine uses.

A :class:`Model` says what one object does when operations run one at a time:

- ``init()``: the state before any operation;
- ``step(state, input, output)``: whether ``output`` is a correct answer to ``input`` in
  ``state`` and the state afterwards. ``output is None`` means the outcome is unknown (the
  operation is pending): the model must then accept and return the state the operation would
  produce if it took effect;
- ``partition(operation)``: the independent objects the operation touches, as
  ``(key, operation restricted to that key)`` pairs. Linearizability is local
  (P-compositional; Herlihy & Wing 1990): a history of single-object operations is
  linearizable iff each per-key sub-history is, so the checker searches key by key. A
  multi-object operation (a ledger transfer) is projected on each object it touches; the
  model's docstring must say what that projection preserves;
- ``read_only(input, output)``: the operation with that outcome (``None``: unknown) never
  changes the state, whatever the state. The search linearizes such an operation as soon as
  it fits, without branching, and the counterexample shrinker may drop it;
- ``describe_operation`` / ``describe_state``: how to print them.

States must be hashable and compare by value: the search memoizes (linearized set, state).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from loadtest.linearizability.history import Json, Operation


@dataclass(frozen=True)
class Model:
    name: str
    init: Callable[[], Hashable]
    step: Callable[[Hashable, Json, Json], tuple[bool, Hashable]]
    partition: Callable[[Operation], Iterable[tuple[Hashable, Operation]]]
    read_only: Callable[[Json, Json], bool]
    describe_operation: Callable[[Json, Json], str]
    describe_state: Callable[[Hashable], str] = repr
