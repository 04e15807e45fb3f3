"""Latency statistics per operation kind, in HDR histograms (microseconds, 3 significant
digits), over the measured window (warm-up excluded).

Several generators' statistics merge exactly: each ships its histograms encoded (HdrHistogram's
compressed, base64 form) and the merge decodes and adds them, count by count, so a merged
percentile is the percentile of every operation, never an average of percentiles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtest.config import OPERATIONS
from loadtest.records import ERROR, OK, REJECTED, UNKNOWN, Record
from loadtest.runner import RunResult

LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def histogram_of(seconds: Iterable[float]) -> HdrHistogram:
    histogram = new_histogram()
    for value in seconds:
        histogram.record_value(min(HIGHEST_US, max(LOWEST_US, round(value * 1e6))))
    return histogram


def percentiles_ms(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9 and max in milliseconds (zeros for an empty histogram)."""
    if histogram.get_total_count() == 0:
        return {key: 0.0 for key in ("p50", "p90", "p99", "p99.9", "max")}
    values = {f"p{p:g}": histogram.get_value_at_percentile(p) / 1000 for p in PERCENTILES}
    values["max"] = histogram.get_max_value() / 1000
    return values


@dataclass
class KindStats:
    kind: str
    latency: HdrHistogram  # from the intended start
    service: HdrHistogram  # from the actual send
    outcomes: Counter[str]
    late: int
    dropped: int
    seconds: float

    @property
    def answered(self) -> int:
        return self.outcomes[OK] + self.outcomes[REJECTED]

    @property
    def throughput(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.outcomes[ERROR] + self.outcomes[UNKNOWN]

    def to_json(self) -> dict[str, object]:
        return {
            "latency_ms": percentiles_ms(self.latency),
            "service_time_ms": percentiles_ms(self.service),
            "count": sum(self.outcomes.values()),
            "outcomes": dict(self.outcomes),
            "late_starts": self.late,
            "dropped": self.dropped,
            "throughput_per_s": round(self.throughput, 2),
            "latency_histogram": self.latency.encode().decode(),
        }


def measured(result: RunResult) -> list[Record]:
    return [r for r in result.records if not r.warmup]


def kind_stats(result: RunResult) -> dict[str, KindStats]:
    """Per operation kind present in the run, in the canonical order."""
    records = measured(result)
    stats: dict[str, KindStats] = {}
    for kind in OPERATIONS:
        mine = [r for r in records if r.kind == kind]
        if not mine and not result.dropped[kind]:
            continue
        answered = [r for r in mine if r.outcome in (OK, REJECTED)]
        stats[kind] = KindStats(
            kind=kind,
            latency=histogram_of(r.latency for r in answered),
            service=histogram_of(r.service_time for r in answered),
            outcomes=Counter(r.outcome for r in mine),
            late=sum(r.lag > result.config.late_threshold for r in mine),
            dropped=result.dropped[kind],
            seconds=result.measured_seconds,
        )
    return stats


def scheduling_lag(result: RunResult) -> HdrHistogram:
    """How late operations started after their intended time (measured window)."""
    return histogram_of(max(0.0, r.lag) for r in measured(result) if r.invoked)


def encode_stats(stats: Mapping[str, KindStats]) -> dict[str, dict[str, Any]]:
    """Per kind: both histograms encoded, outcome counts, late starts, drops."""
    return {
        kind: {
            "latency": s.latency.encode().decode(),
            "service": s.service.encode().decode(),
            "outcomes": dict(s.outcomes),
            "late": s.late,
            "dropped": s.dropped,
        }
        for kind, s in stats.items()
    }


def decode_histogram(encoded: str) -> HdrHistogram:
    histogram = new_histogram()
    histogram.decode_and_add(encoded.encode())
    return histogram


def merge_stats(
    parts: Sequence[Mapping[str, Mapping[str, Any]]], seconds: float
) -> dict[str, KindStats]:
    """The statistics of every part together (parts as :func:`encode_stats` wrote them)."""
    merged: dict[str, KindStats] = {}
    for kind in OPERATIONS:
        mine = [part[kind] for part in parts if kind in part]
        if not mine:
            continue
        stats = KindStats(kind, new_histogram(), new_histogram(), Counter(), 0, 0, seconds)
        for encoded in mine:
            stats.latency.decode_and_add(encoded["latency"].encode())
            stats.service.decode_and_add(encoded["service"].encode())
            stats.outcomes.update(encoded["outcomes"])
            stats.late += encoded["late"]
            stats.dropped += encoded["dropped"]
        merged[kind] = stats
    return merged


def merge_histograms(encoded: Iterable[str]) -> HdrHistogram:
    merged = new_histogram()
    for text in encoded:
        merged.decode_and_add(text.encode())
    return merged
