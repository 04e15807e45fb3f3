"""Shards of one run → one run: ``caplab load merge DIR|gs://BUCKET/RUN`` and ``--workers``.

- **Statistics** merge exactly: each shard's encoded HDR histograms are decoded and added
  (:func:`loadtest.stats.merge_stats`); counts of outcomes, late starts and drops add up.
- **History**: every record moves to the reference clock, epoch seconds: a shard's monotonic
  times plus its wall-clock offset, minus its clock's offset (:mod:`loadtest.clock`); then
  each invocation interval is widened by the clock's uncertainty (``invoked`` earlier,
  ``returned`` and the wall-clock invocation ``wall_invoked`` likewise bounded), so the
  checkers only see order that is certain. Locally every worker shares one clock and nothing
  widens.
- **Accounts**: every part creates the run's accounts (idempotently); the one creation per
  account that really created it stays in the history, the others (which only found the
  account there) are dropped.

A merge refuses what the checkers could not judge soundly: shards of different runs or
configurations, a part twice, a missing part (its transfers would be missing from the
history, and reads of their effects would look wrong), an account no part created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtest.clock import Clock
from loadtest.plan import Part
from loadtest.records import Record
from loadtest.runner import Endpoints, RunResult
from loadtest.shards import Shard, ShardError
from loadtest.stats import (
    KindStats,
    decode_histogram,
    merge_histograms,
    merge_stats,
    percentiles_ms,
)


@dataclass(frozen=True)
class WorkerSummary:
    """One generator's share of a run, for the report."""

    index: int
    operations: int
    lag: HdrHistogram
    late: int
    dropped: int
    clock: Clock
    start_offset: float  # seconds after the earliest generator's start
    cpu_seconds: float = 0.0  # CPU its process spent driving the schedule

    @property
    def cpu_per_operation(self) -> float:
        return self.cpu_seconds / self.operations if self.operations else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "worker": self.index,
            "operations": self.operations,
            "cpu_ms_per_operation": round(self.cpu_per_operation * 1000, 4),
            "scheduling_lag_ms": percentiles_ms(self.lag),
            "late_starts": self.late,
            "dropped": self.dropped,
            "clock": self.clock.to_json(),
            "start_offset_ms": round(self.start_offset * 1000, 3),
        }


@dataclass
class Merged:
    result: RunResult
    stats: dict[str, KindStats]
    lag: HdrHistogram
    workers: list[WorkerSummary]


def _to_reference(records: list[Record], shard: Shard) -> None:
    """Move ``records`` (in place) from the shard's clocks to the reference, widened."""
    to_epoch = shard.wall_offset - shard.clock.offset
    widen = shard.clock.uncertainty
    wall_shift = shard.clock.offset + widen
    worker = shard.part.index
    for r in records:
        r.intended += to_epoch
        if r.invoked:
            r.invoked += to_epoch - widen
            r.wall_invoked -= wall_shift
        if r.returned:
            r.returned += to_epoch + widen
        if r.resolved_returned:
            r.resolved_returned += to_epoch + widen
        r.worker = worker


def _check_parts(shards: list[Shard]) -> None:
    first = shards[0]
    for shard in shards[1:]:
        if shard.run_id != first.run_id:
            raise ShardError(f"shards of two runs: {first.run_id} and {shard.run_id}")
        if shard.config != first.config or shard.part.count != first.part.count:
            raise ShardError(f"part {shard.part} of {shard.run_id} ran another configuration")
    indexes = Counter(shard.part.index for shard in shards)
    twice = sorted(i for i, n in indexes.items() if n > 1)
    if twice:
        raise ShardError(f"parts {twice} appear twice")
    missing = sorted(set(range(first.part.count)) - set(indexes))
    if missing:
        raise ShardError(
            f"parts {missing} of {first.part.count} are missing: without their operations the "
            "history cannot be checked"
        )


def _creations(shards: list[Shard], accounts: list[str]) -> list[Record]:
    """Per account, the creation that created it."""
    chosen: dict[str, Record] = {}
    for shard in shards:
        for record in shard.setup:
            if record.created is not False and record.account not in chosen:
                chosen[record.account] = record
    absent = [a for a in accounts if a not in chosen]
    if absent:
        raise ShardError(
            f"{len(absent)} accounts (first {absent[0]}) existed before the run: no part created "
            "them (a reused run id?)"
        )
    return sorted(chosen.values(), key=lambda r: r.intended)


def merge(shards: Iterable[Shard]) -> Merged:
    """One run from its shards (all of them)."""
    parts = sorted(shards, key=lambda s: s.part.index)
    if not parts:
        raise ShardError("no shards to merge")
    _check_parts(parts)
    first = parts[0]
    earliest = min(s.started_wall - s.clock.offset for s in parts)
    workers, records, dropped, notes = [], [], Counter[str](), list[str]()
    for shard in parts:
        _to_reference(shard.setup, shard)
        _to_reference(shard.records, shard)
        records.extend(shard.records)
        dropped.update(shard.dropped)
        notes.extend(n for n in shard.notes if n not in notes)
        workers.append(
            WorkerSummary(
                index=shard.part.index,
                operations=len(shard.records),
                lag=decode_histogram(shard.lag),
                late=sum(int(s["late"]) for s in shard.stats.values()),
                dropped=sum(shard.dropped.values()),
                clock=shard.clock,
                start_offset=shard.started_wall - shard.clock.offset - earliest,
                cpu_seconds=shard.cpu_seconds,
            )
        )
    records.sort(key=lambda r: r.seq)
    endpoints = Endpoints(
        str(first.endpoints["ledger_url"]),
        first.endpoints.get("activity_url"),
        replica_url=first.endpoints.get("replica_url"),
    )
    widest = max(s.clock.uncertainty for s in parts)
    result = RunResult(
        config=first.config,
        run_id=first.run_id,
        accounts=first.accounts,
        endpoints=endpoints,
        records=records,
        setup=_creations(parts, first.accounts),
        started_wall=earliest,
        dropped=dropped,
        notes=notes,
        part=Part(),
        wall_offset=0.0,
        clock=Clock(0.0, widest, "reference"),
    )
    seconds = result.measured_seconds
    return Merged(
        result=result,
        stats=merge_stats([s.stats for s in parts], seconds),
        lag=merge_histograms(s.lag for s in parts),
        workers=workers,
    )
