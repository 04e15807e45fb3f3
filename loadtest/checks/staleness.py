"""Staleness of balance reads, in time and in versions (PBS's t- and k-staleness), and
whether each read honoured its staleness bound.

The history knows every committed version of every run account: creation at version 1 and
each committed transfer's new versions with Spanner's commit timestamp. For a read issued at
wall-clock moment ``m`` that returned version ``v``:

- *newest(m)* is the highest version committed at or before ``m``;
- *versions behind* (k) = newest(m) − v (0 when the read is fresh);
- *time behind* (t) = m − commit time of version v+1 (how long the value it returned had
  already been superseded), 0 when fresh.

A read with a bound B (exact and bounded staleness; cached reads' maximum entry age) violates
its bound when t > B + tolerance. Since the server serves a read after it was issued, a
correct read always has t ≤ B: this is checked, not assumed. Independently, every read's
version must be the newest committed at its own ``read_timestamp`` (a stale read is an exact
view of the past, not a mix): a mismatch is a *snapshot violation*.

Commit times come from the server's clock and ``m`` from the generator's; on one machine they
are the same clock. Against the cloud, client clock error adds to t (``tolerance`` covers it).
Reads that need a version whose commit time is unknown (a transfer of unknown outcome) are
skipped and counted.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

from loadtest.records import OK, Record
from loadtest.runner import RunResult

BALANCE_READS = ("strong", "exact", "bounded", "cached")
DEFAULT_TOLERANCE = 0.001


@dataclass
class ModeStaleness:
    mode: str
    versions_behind: list[int] = field(default_factory=list)
    seconds_behind: list[float] = field(default_factory=list)
    bound_violations: list[dict[str, object]] = field(default_factory=list)
    snapshot_violations: list[dict[str, object]] = field(default_factory=list)
    skipped: int = 0
    served_by: dict[str, int] = field(default_factory=dict)

    @property
    def reads(self) -> int:
        return len(self.versions_behind)

    @property
    def fresh_fraction(self) -> float:
        return self.versions_behind.count(0) / self.reads if self.reads else 1.0

    def k_staleness(self, k_max: int = 5) -> list[float]:
        """PBS k-staleness: P(read within k versions of the newest), k = 0..k_max."""
        if not self.reads:
            return [1.0] * (k_max + 1)
        return [sum(b <= k for b in self.versions_behind) / self.reads for k in range(k_max + 1)]

    def to_json(self) -> dict[str, object]:
        stale = sorted(t for t in self.seconds_behind if t > 0)

        def quantile(q: float) -> float:
            return (
                round(stale[min(len(stale) - 1, int(q * len(stale)))] * 1000, 3) if stale else 0.0
            )

        return {
            "reads": self.reads,
            "fresh_fraction": round(self.fresh_fraction, 4),
            "max_versions_behind": max(self.versions_behind, default=0),
            "k_staleness": [round(p, 4) for p in self.k_staleness()],
            "stale_ms": {"p50": quantile(0.5), "p99": quantile(0.99), "max": quantile(1.0)},
            "bound_violations": self.bound_violations[:20],
            "bound_violation_count": len(self.bound_violations),
            "snapshot_violation_count": len(self.snapshot_violations),
            "snapshot_violations": self.snapshot_violations[:20],
            "skipped": self.skipped,
            "served_by": self.served_by,
        }


class CommitLog:
    """Committed versions per account: sorted commit times, and version → commit time."""

    def __init__(self, records: list[Record]) -> None:
        commits: dict[str, dict[int, float]] = defaultdict(dict)
        for r in records:
            if r.outcome != OK or r.commit_timestamp is None:
                continue
            if r.kind == "create" and r.version is not None:
                commits[r.account][r.version] = r.commit_timestamp
            elif r.kind == "transfer" and r.from_version and r.to_version:
                commits[r.account][r.from_version] = r.commit_timestamp
                commits[r.other][r.to_version] = r.commit_timestamp
        self.commit_time = commits
        self._timeline = {
            account: sorted((t, v) for v, t in versions.items())
            for account, versions in commits.items()
        }

    def newest_at(self, account: str, moment: float) -> int | None:
        """The highest version committed at or before ``moment``, if every version up to it is
        known (None when a transfer of unknown outcome leaves a gap)."""
        timeline = self._timeline.get(account, [])
        index = bisect.bisect_right(timeline, (moment, float("inf")))
        if index == 0:
            return None
        version = timeline[index - 1][1]
        return version if version == index else None


def check_staleness(
    result: RunResult, tolerance: float = DEFAULT_TOLERANCE
) -> dict[str, ModeStaleness]:
    log = CommitLog([*result.setup, *result.records])
    modes = {mode: ModeStaleness(mode) for mode in BALANCE_READS}
    for r in result.records:
        if r.kind not in modes or r.outcome != OK or r.version is None or r.read_timestamp is None:
            continue
        stats = modes[r.kind]
        stats.served_by[r.served_by] = stats.served_by.get(r.served_by, 0) + 1
        newest = log.newest_at(r.account, r.wall_invoked)
        at_read_ts = log.newest_at(r.account, r.read_timestamp)
        if newest is None or at_read_ts is None:
            stats.skipped += 1
            continue
        behind = max(0, newest - r.version)
        seconds = 0.0
        if behind:
            seconds = r.wall_invoked - log.commit_time[r.account][r.version + 1]
        stats.versions_behind.append(behind)
        stats.seconds_behind.append(seconds)
        where = {"seq": r.seq, "account": r.account, "version": r.version}
        if at_read_ts != r.version:
            stats.snapshot_violations.append({**where, "newest_at_read_timestamp": at_read_ts})
        if r.staleness_bound is not None and seconds > r.staleness_bound + tolerance:
            stats.bound_violations.append(
                {
                    **where,
                    "behind_ms": round(seconds * 1000, 3),
                    "bound_ms": r.staleness_bound * 1000,
                }
            )
    return {mode: stats for mode, stats in modes.items() if stats.reads or stats.skipped}
