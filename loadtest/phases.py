"""A run cut into named phases (``baseline``, ``partition``, ``healed``…) and over time: per
read mode, how available it was, how fast, and how stale.

An operation belongs to the phase in which it was *scheduled* (its intended start, an
arrival), so a phase's availability is the fraction of the requests that arrived in it and
got an answer: ``ok``, or for a transfer also a refusal for insufficient funds (a correct
answer). Warm-up operations are left out, as in every statistic. Staleness per phase comes
from the staleness checker run on the phase's reads, with every commit of the run known.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtest.checks.staleness import ModeStaleness, check_staleness
from loadtest.config import OPERATIONS
from loadtest.records import OK, REJECTED, Record
from loadtest.runner import RunResult
from loadtest.stats import histogram_of, percentiles_ms

ANSWERED = (OK, REJECTED)


@dataclass(frozen=True)
class Phase:
    """``[start, end)`` in epoch seconds on the run's reference clock."""

    name: str
    start: float
    end: float


@dataclass
class ModeInPhase:
    mode: str
    attempted: int
    answered: int
    latency: HdrHistogram
    staleness: ModeStaleness | None

    @property
    def availability(self) -> float:
        return self.answered / self.attempted if self.attempted else math.nan

    def to_json(self) -> dict[str, Any]:
        staleness = None
        if self.staleness is not None and self.staleness.reads:
            summary = self.staleness.to_json()
            staleness = {
                "reads": self.staleness.reads,
                "fresh_fraction": summary["fresh_fraction"],
                "stale_ms": summary["stale_ms"],
                "max_versions_behind": summary["max_versions_behind"],
            }
        return {
            "attempted": self.attempted,
            "answered": self.answered,
            "availability": None if not self.attempted else round(self.availability, 4),
            "latency_ms": percentiles_ms(self.latency),
            "staleness": staleness,
        }


@dataclass
class PhaseSummary:
    phase: Phase
    modes: dict[str, ModeInPhase]

    def to_json(self, origin: float) -> dict[str, Any]:
        return {
            "name": self.phase.name,
            "start": self.phase.start,
            "end": self.phase.end,
            "start_s": round(self.phase.start - origin, 3),
            "end_s": round(self.phase.end - origin, 3),
            "modes": {mode: m.to_json() for mode, m in self.modes.items()},
        }


def epoch(result: RunResult, record: Record) -> float:
    """When ``record`` was scheduled, in epoch seconds on the run's reference clock."""
    return record.intended + result.wall_offset


def _restricted(result: RunResult, seqs: set[int]) -> RunResult:
    """``result`` whose records are those numbered ``seqs``; every other record goes to the
    setup, where the staleness checker still learns the commits from it."""
    inside = [r for r in result.records if r.seq in seqs]
    others = [r for r in result.records if r.seq not in seqs]
    return dataclasses.replace(result, records=inside, setup=[*result.setup, *others])


def summarise(
    result: RunResult, phases: Sequence[Phase], checked: RunResult | None = None
) -> list[PhaseSummary]:
    """Per phase and mode: availability and latency from ``result`` (what users saw),
    staleness from ``checked`` (the run as the checkers see it; ``result`` by default)."""
    summaries = []
    for phase in phases:
        inside = [
            r
            for r in result.records
            if not r.warmup and phase.start <= epoch(result, r) < phase.end
        ]
        staleness = check_staleness(_restricted(checked or result, {r.seq for r in inside}))
        modes = {}
        for mode in OPERATIONS:
            mine = [r for r in inside if r.kind == mode]
            if not mine:
                continue
            answered = [r for r in mine if r.outcome in ANSWERED]
            modes[mode] = ModeInPhase(
                mode,
                len(mine),
                len(answered),
                histogram_of(r.latency for r in answered),
                staleness.get(mode),
            )
        summaries.append(PhaseSummary(phase, modes))
    return summaries


@dataclass(frozen=True)
class Timeline:
    """Availability per mode in consecutive buckets of the run (seconds from its start)."""

    bucket: float
    starts: list[float]
    availability: dict[str, list[float]]  # NaN where nothing of that mode was scheduled


def timeline(result: RunResult, buckets: int = 60) -> Timeline:
    records = [r for r in result.records if r.kind != "create"]
    if not records:
        return Timeline(1.0, [], {})
    origin = result.started_wall
    width = max(result.config.duration / buckets, 0.05)
    count = math.ceil(result.config.duration / width)
    asked: dict[str, list[int]] = {}
    answered: dict[str, list[int]] = {}
    for r in records:
        index = min(count - 1, max(0, int((epoch(result, r) - origin) / width)))
        asked.setdefault(r.kind, [0] * count)[index] += 1
        answered.setdefault(r.kind, [0] * count)[index] += r.outcome in ANSWERED
    return Timeline(
        width,
        [i * width for i in range(count)],
        {
            mode: [
                a / n if n else math.nan for a, n in zip(answered[mode], asked[mode], strict=True)
            ]
            for mode in OPERATIONS
            if mode in asked
        },
    )
