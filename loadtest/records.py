"""One record per operation of a run: what was asked, when, and what came back.

Times: ``intended``, ``invoked`` and ``returned`` are on the generator's monotonic clock
(seconds); ``wall_invoked`` is the same instant on the UTC wall clock (epoch seconds), so it
can be compared with the ledger's commit and read timestamps. ``outcome``:

- ``ok``: the operation succeeded;
- ``rejected``: a transfer refused for insufficient funds (a correct answer, nothing changed);
- ``error``: a definite failure (4xx, or a read that failed): nothing changed;
- ``unknown``: a transfer that timed out, lost its connection or got a 5xx: it may or may not
  have committed (the serializability check treats its outcome as unknown).

After the run, each unknown transfer is *resolved* when possible: sent again with its
``Idempotency-Key``, the ledger answers the stored response if it had committed (with its
versions and commit timestamp), or executes it now if it had not. Either way the transfer
took effect between its call and ``resolved_returned``, so the checkers can see it as a
completed operation over that longer interval (:func:`resolved_view`), while the statistics
keep what the user saw: an error.

A run merged from several workers (:mod:`loadtest.merge`) puts every time on one reference
clock in epoch seconds instead (``RunResult.wall_offset`` says which).

:func:`to_columns` / :func:`from_columns` are the compact form shards travel in: one JSON list
per field, ``null`` for a field at its default in every record. Hand-written because it is
the merge's hot path: a million records load in a few seconds this way, against tens of
seconds through ``dataclasses.asdict`` and keyword construction.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

OK, REJECTED, ERROR, UNKNOWN = "ok", "rejected", "error", "unknown"


@dataclass(slots=True)
class Record:
    seq: int
    kind: str  # transfer | strong | exact | bounded | cached | snapshot | activity | create
    account: str
    intended: float
    other: str = ""
    amount: int = 0
    warmup: bool = False
    invoked: float = 0.0
    wall_invoked: float = 0.0
    returned: float = 0.0
    outcome: str = ERROR
    status: int | None = None
    error: str = ""
    # balance reads
    balance: int | None = None
    version: int | None = None
    read_timestamp: float | None = None  # epoch seconds
    served_by: str = ""
    consistency: str = ""
    staleness_bound: float | None = None  # seconds
    writer: str = ""  # the operation that wrote the version read, as the ledger names it
    # transfers
    idempotency_key: str = ""
    resolved: str = ""  # ok | rejected: what an unknown transfer turned out to be
    resolved_returned: float = 0.0  # when the replay that told us returned
    transfer_id: str = ""
    from_version: int | None = None
    to_version: int | None = None
    commit_timestamp: float | None = None  # epoch seconds
    from_previous_writer: str = ""  # the writers of the versions the transfer replaced
    to_previous_writer: str = ""
    # snapshots: account -> [balance, version]
    snapshot: dict[str, list[int]] = field(default_factory=dict)
    snapshot_writers: dict[str, str] = field(default_factory=dict)  # account -> writer
    total: int | None = None
    # activity reads: [transfer_id, committed_at epoch seconds] newest first
    activity: list[tuple[str, float]] = field(default_factory=list)
    complete_page: bool = False
    # account creation: False when the account already existed (another worker created it)
    created: bool | None = None
    worker: int = 0  # which worker of the run issued it

    @property
    def latency(self) -> float:
        """From the intended start: what a user arriving on schedule waited."""
        return self.returned - self.intended

    @property
    def service_time(self) -> float:
        """From the actual send: what a closed-loop tool would have reported."""
        return self.returned - self.invoked

    @property
    def lag(self) -> float:
        """How late the operation started after its intended time."""
        return self.invoked - self.intended

    def to_json(self) -> dict[str, Any]:
        return dict(zip(FIELDS, _values(self), strict=True))


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Record))
_values = operator.attrgetter(*FIELDS)
_FACTORIES = {
    f.name: f.default_factory
    for f in dataclasses.fields(Record)
    if f.default_factory is not dataclasses.MISSING
}
_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(Record) if f.default is not dataclasses.MISSING
}


def _default(name: str) -> Any:
    return _FACTORIES[name]() if name in _FACTORIES else _DEFAULTS.get(name, dataclasses.MISSING)


def to_columns(records: Sequence[Record]) -> dict[str, list[Any] | None]:
    """One list per field, in field order; ``None`` for a field at its default everywhere."""
    if not records:
        return dict.fromkeys(FIELDS)
    columns: dict[str, list[Any] | None] = {}
    for name, column in zip(FIELDS, zip(*map(_values, records), strict=True), strict=True):
        default = _default(name)
        columns[name] = None if all(v == default for v in column) else list(column)
    return columns


def from_columns(columns: Mapping[str, Sequence[Any] | None], count: int) -> list[Record]:
    """The ``count`` records :func:`to_columns` described (activity items, JSON lists, come
    back as tuples). Raises ``ValueError`` on a column of another length or a missing one."""
    if count == 0:
        return []
    filled: list[Iterable[Any]] = []
    for name in FIELDS:
        column = columns.get(name)
        if column is not None:
            if len(column) != count:
                raise ValueError(f"column {name!r} has {len(column)} values for {count} records")
            filled.append(column)
        elif name in _FACTORIES:
            filled.append([_FACTORIES[name]() for _ in range(count)])
        elif name in _DEFAULTS:
            filled.append(itertools.repeat(_DEFAULTS[name], count))
        else:
            raise ValueError(f"records without their {name!r} field")
    # Every iterable yields exactly ``count`` values or repeats forever: zip stops at count.
    records = list(itertools.starmap(Record, itertools.islice(zip(*filled, strict=False), count)))
    if columns.get("activity") is not None:
        for record in records:
            record.activity = [(str(i), float(t)) for i, t in record.activity]
    return records


def resolved_view(records: Iterable[Record]) -> list[Record]:
    """``records`` as the checkers see them: an unknown transfer that was resolved becomes a
    completed one whose interval runs from its call to the resolution's answer."""
    return [
        dataclasses.replace(r, outcome=r.resolved, returned=r.resolved_returned)
        if r.outcome == UNKNOWN and r.resolved
        else r
        for r in records
    ]
