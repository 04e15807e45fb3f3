"""Key-value store with read, write, compare-and-set and append (a register per key).

Inputs and outputs (values are JSON scalars)::

    {"op": "read",   "key": "x"}                              -> {"value": 1}
    {"op": "write",  "key": "x", "value": 1}                  -> {}
    {"op": "cas",    "key": "x", "expected": 1, "value": 2}   -> {"ok": true}
    {"op": "append", "key": "x", "value": "s"}                -> {}

``append`` concatenates strings, a never-written key counting as ``""``; a never-written key
reads ``null``, or ``""`` (so Porcupine-style key-value histories, whose ``get`` of a missing
key answers ``""``, check as they are). ``get`` and ``put`` are accepted as names of read and
write. Keys are independent objects, so a history is checked key by key.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from loadtest.linearizability.history import Json, Operation
from loadtest.linearizability.model import Model

_ALIASES = {"get": "read", "put": "write"}


def _step(state: Hashable, input: Json, output: Json) -> tuple[bool, Hashable]:
    op = input["op"]
    if op == "read" or op == "get":
        if output is None:
            return True, state
        value = output.get("value")
        return value == state or (value == "" and state is None), state
    if op == "write" or op == "put":
        return True, input["value"]
    if op == "append":
        return True, ("" if state is None else str(state)) + str(input["value"])
    if op == "cas":
        swapped = state == input["expected"]
        new_state = input["value"] if swapped else state
        return output is None or bool(output.get("ok")) == swapped, new_state
    raise ValueError(f"kv model: unknown operation {op!r}")


def _read_only(input: Json, output: Json) -> bool:
    """Reads, and compare-and-sets known to have failed, leave the value as it was."""
    return _ALIASES.get(input["op"], input["op"]) == "read" or (
        input["op"] == "cas" and output is not None and output.get("ok") is False
    )


def _partition(operation: Operation) -> Iterable[tuple[Hashable, Operation]]:
    return [(operation.input["key"], operation)]


def _describe(input: Json, output: Json) -> str:
    op, key = _ALIASES.get(input["op"], input["op"]), input["key"]
    if op == "read":
        return f"read {key} → {'?' if output is None else repr(output.get('value'))}"
    if op == "write":
        return f"write {key} := {input['value']!r}"
    if op == "append":
        return f"append {key} += {input['value']!r}"
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
