"""One record per operation of a run: what was asked, when, and what came back.

Times: ``intended``, ``invoked`` and ``returned`` are on the generator's monotonic clock
(seconds); ``wall_invoked`` is the same instant on the UTC wall clock (epoch seconds), so it
can be compared with the ledger's commit and read timestamps. ``outcome``:

- ``ok``: the operation succeeded;
- ``rejected``: a transfer refused for insufficient funds (a correct answer, nothing changed);
- ``error``: a definite failure (4xx, or a read that failed): nothing changed;
- ``unknown``: a transfer that timed out, lost its connection or got a 5xx: it may or may not
  have committed (the serializability check treats its outcome as unknown).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, REJECTED, ERROR, UNKNOWN = "ok", "rejected", "error", "unknown"


@dataclass
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
        return asdict(self)
