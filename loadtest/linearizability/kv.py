"""Key-value store with read, write and compare-and-set (a register per key).

Inputs and outputs (values are JSON scalars; a key never written reads ``null``)::

    {"op": "read",  "key": "x"}                              -> {"value": 1}
    {"op": "write", "key": "x", "value": 1}                  -> {}
    {"op": "cas",   "key": "x", "expected": 1, "value": 2}   -> {"ok": true}

Keys are independent objects, so a history is checked key by key.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from loadtest.linearizability.history import Json, Operation
from loadtest.linearizability.model import Model


def _step(state: Hashable, input: Json, output: Json) -> tuple[bool, Hashable]:
    op = input["op"]
    if op == "read":
        return output is None or output.get("value") == state, state
    if op == "write":
        return True, input["value"]
    if op == "cas":
        swapped = state == input["expected"]
        new_state = input["value"] if swapped else state
        return output is None or bool(output.get("ok")) == swapped, new_state
    raise ValueError(f"kv model: unknown operation {op!r}")


def _read_only(input: Json, output: Json) -> bool:
    """Reads, and compare-and-sets known to have failed, leave the value as it was."""
    return input["op"] == "read" or (
        input["op"] == "cas" and output is not None and output.get("ok") is False
    )


def _partition(operation: Operation) -> Iterable[tuple[Hashable, Operation]]:
    return [(operation.input["key"], operation)]


def _describe(input: Json, output: Json) -> str:
    op, key = input["op"], input["key"]
    if op == "read":
        return f"read {key} → {'?' if output is None else output.get('value')!r}"
    if op == "write":
        return f"write {key} := {input['value']!r}"
    answer = "?" if output is None else ("ok" if output.get("ok") else "failed")
    return f"cas {key} {input['expected']!r}→{input['value']!r} → {answer}"


KV = Model(
    name="kv",
    init=lambda: None,
    step=_step,
    partition=_partition,
    read_only=_read_only,
    describe_operation=_describe,
    describe_state=lambda state: f"value={state!r}",
)
