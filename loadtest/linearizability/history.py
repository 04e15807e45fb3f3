"""Operations and the JSON history format the linearizability checker reads.

A history file is one JSON object (or, for convenience, just the ``operations`` list)::

    {
      "format": "caplab-history/1",
      "model": "kv",
      "operations": [
        {"client": 0, "input": {"op": "write", "key": "x", "value": 1},
         "output": {}, "call": 0.0, "return": 1.0},
        {"client": 1, "input": {"op": "read", "key": "x"},
         "output": {"value": 1}, "call": 0.5, "return": 2.0},
        {"client": 2, "input": {"op": "write", "key": "x", "value": 2},
         "output": null, "call": 1.5, "return": null}
      ]
    }

- ``client``: who issued it (a string or a number); one client issues one operation at a time.
- ``input`` / ``output``: what was asked and what was answered, in the model's vocabulary
  (see the model's module docstring). Values are JSON scalars.
- ``call`` / ``return``: when it was invoked and when its answer arrived, on one clock (a
  monotonic clock in seconds is the convention; any unit works). Two operations are ordered
  in real time only when one returned strictly before the other was called.
- ``"return": null`` marks an operation whose outcome is unknown (timeout, reset connection,
  5xx): it may have taken effect at any moment after its call, or never; its ``output`` is
  ignored.
- ``model`` is optional (``caplab check --model`` overrides it); unknown keys are ignored, so
  a richer record (read timestamp, consistency mode...) can travel in the same file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

FORMAT = "caplab-history/1"

Json: TypeAlias = Any


class HistoryFormatError(ValueError):
    """A history file that does not follow the documented format (names the bad record)."""


@dataclass(frozen=True)
class Operation:
    """One invocation and its response. ``return_time is None``: outcome unknown."""

    client: str | int
    input: Json
    output: Json
    call: float
    return_time: float | None
    index: int = field(default=0, compare=False)

    @property
    def pending(self) -> bool:
        return self.return_time is None

    def to_json(self) -> dict[str, Json]:
        return {
            "client": self.client,
            "input": self.input,
            "output": None if self.pending else self.output,
            "call": self.call,
            "return": self.return_time,
        }


@dataclass(frozen=True)
class History:
    operations: tuple[Operation, ...]
    model: str | None = None


def _operation(record: Json, index: int) -> Operation:
    if not isinstance(record, Mapping):
        raise HistoryFormatError(f"operation {index}: expected an object, got {record!r}")
    for key in ("client", "input", "call"):
        if key not in record:
            raise HistoryFormatError(f"operation {index}: missing field {key!r}")
    call, returned = record["call"], record.get("return")
    if not isinstance(call, int | float) or not (
        returned is None or isinstance(returned, int | float)
    ):
        raise HistoryFormatError(f"operation {index}: 'call' and 'return' must be numbers")
    if returned is not None and returned < call:
        raise HistoryFormatError(
            f"operation {index}: returns ({returned}) before its call ({call})"
        )
    return Operation(
        client=record["client"],
        input=record["input"],
        output=record.get("output"),
        call=float(call),
        return_time=None if returned is None else float(returned),
        index=index,
    )


def parse_history(document: Json) -> History:
    """A :class:`History` from a decoded JSON document (object or bare list)."""
    if isinstance(document, list):
        records, model = document, None
    elif isinstance(document, Mapping) and isinstance(document.get("operations"), list):
        declared = document.get("format", FORMAT)
        if declared != FORMAT:
            raise HistoryFormatError(f"unsupported history format {declared!r} (want {FORMAT!r})")
        records, model = document["operations"], document.get("model")
    else:
        raise HistoryFormatError("a history is a list of operations or {'operations': [...]}")
    return History(tuple(_operation(r, i) for i, r in enumerate(records)), model)


def load_history(path: Path) -> History:
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise HistoryFormatError(f"{path}: not JSON ({error})") from error
    return parse_history(document)


def dump_history(
    operations: Iterable[Operation], model: str | None = None, **extra: Json
) -> dict[str, Json]:
    """The JSON document for ``operations`` (``extra`` keys travel alongside)."""
    document: dict[str, Json] = {"format": FORMAT}
    if model:
        document["model"] = model
    document.update(extra)
    document["operations"] = [op.to_json() for op in operations]
    return document


def renumber(operations: Sequence[Operation]) -> list[Operation]:
    """The same operations with ``index`` = position, as the checker expects."""
    return [
        Operation(op.client, op.input, op.output, op.call, op.return_time, i)
        for i, op in enumerate(operations)
    ]
