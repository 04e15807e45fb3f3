"""How Bigtable would spread a design's writes over tablets: a model, replayed in time windows.

The emulator keeps one tablet (and its ``SampleRowKeys`` says nothing about load), so the lab
models the splitting instead. Bigtable stores a table as contiguous key ranges (tablets),
splits a tablet that grows too large or too busy, and serves each tablet from one node
(https://cloud.google.com/bigtable/docs/overview,
https://cloud.google.com/bigtable/docs/hot-tablets). The model is hand-written because it is
the lesson; Bigtable's real thresholds are not published, so both are scaled to the run:

1. The table starts empty, as one tablet (as the lab's tables do).
2. Writes are replayed in windows of ``window`` seconds. Each lands on the tablet whose
   range holds its key; the window's *write share* is the busiest tablet's share of them.
3. After each window, a tablet that took more than ``1/tablets`` of the window's writes
   splits at the median of the keys it was written (load), then any tablet holding more than
   ``1/tablets`` of the run's bytes splits at its byte median (size). Either split cuts at
   the shortest key separating the two halves, so a prefix (an account) stays whole when it
   can.
4. ``max_tablet_write_share`` is the mean write share over the windows after ``warmup``
   (those before it let the layout form).

With real tablet boundaries (from ``SampleRowKeys`` on a real instance) the layout is fixed
and only step 2 applies.

A hot tablet bounds throughput whatever the cluster size: one tablet is one node's work.
:func:`nodes_needed` turns a share into nodes at a per-node write rate.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

NODE_WRITE_ROWS_PER_S = 14_000
NODE_WRITE_RATE_SOURCE = (
    "Bigtable SSD node, up to 14,000 rows/s of 1 KB writes: "
    "https://cloud.google.com/bigtable/docs/performance"
)


@dataclass(frozen=True)
class Write:
    at: float
    """Seconds after the run's start."""
    key: bytes
    size: int
    """Bytes the row occupies (key and cells)."""


@dataclass(frozen=True)
class ModelConfig:
    window: float = 0.5
    warmup: float = 2.0
    tablets: int = 16
    """The run's data fills this many tablets by size, and a tablet taking more than
    1/tablets of a window's writes splits for load."""

    def __post_init__(self) -> None:
        if self.window <= 0 or self.warmup < 0 or self.tablets < 1:
            raise ValueError("window must be positive, warm-up not negative, tablets >= 1")


@dataclass(frozen=True)
class Replay:
    shares: tuple[float, ...]
    """Per window: the busiest tablet's share of that window's writes (0 for an empty one)."""
    measured: tuple[bool, ...]
    """Per window: counted in the mean (after the warm-up, and writes happened)."""
    tablet_counts: tuple[int, ...]
    """Per window: how many tablets served it."""
    boundaries: tuple[bytes, ...]
    """The final layout: tablet i is [boundaries[i-1], boundaries[i])."""

    @property
    def max_tablet_write_share(self) -> float:
        values = [s for s, m in zip(self.shares, self.measured, strict=True) if m]
        return sum(values) / len(values) if values else 0.0


def separator(left: bytes, right: bytes) -> bytes:
    """The shortest prefix of ``right`` that sorts after ``left`` (needs ``left < right``):
    every key <= left is below it and ``right`` is not."""
    for end in range(1, len(right) + 1):
        if right[:end] > left:
            return right[:end]
    raise ValueError("separator needs left < right")


def window_count(duration: float, window: float) -> int:
    return max(1, math.ceil(duration / window - 1e-9))


def _windows(writes: Sequence[Write], duration: float, window: float) -> list[list[Write]]:
    buckets: list[list[Write]] = [[] for _ in range(window_count(duration, window))]
    for write in writes:
        buckets[min(len(buckets) - 1, int(write.at // window))].append(write)
    return buckets


class _Layout:
    """Tablet boundaries over the stored keys (sorted, with their sizes)."""

    def __init__(self, boundaries: Sequence[bytes] = ()) -> None:
        self.boundaries = sorted(boundaries)
        self.keys: list[bytes] = []
        self.sizes: dict[bytes, int] = {}

    def tablet_of(self, key: bytes) -> int:
        return bisect.bisect_right(self.boundaries, key)

    def store(self, write: Write) -> None:
        if write.key not in self.sizes:
            bisect.insort(self.keys, write.key)
        self.sizes[write.key] = write.size

    def _stored_in(self, tablet: int) -> list[bytes]:
        low = self.boundaries[tablet - 1] if tablet > 0 else None
        high = self.boundaries[tablet] if tablet < len(self.boundaries) else None
        start = 0 if low is None else bisect.bisect_left(self.keys, low)
        end = len(self.keys) if high is None else bisect.bisect_left(self.keys, high)
        return self.keys[start:end]

    def split_between(self, ordered: Sequence[bytes], index: int) -> None:
        """Split between ``ordered[index - 1]`` and ``ordered[index]`` (keys of one tablet)."""
        bisect.insort(self.boundaries, separator(ordered[index - 1], ordered[index]))

    def split_for_load(
        self, written: dict[int, set[bytes]], counts: Counter[int], total: int, tablets: int
    ) -> None:
        for tablet, count in counts.items():
            keys = sorted(written[tablet])
            if count * tablets > total and len(keys) >= 2:
                self.split_between(keys, len(keys) // 2)

    def split_for_size(self, limit: float) -> None:
        tablet = 0
        while tablet <= len(self.boundaries):
            keys = self._stored_in(tablet)
            sizes = [self.sizes[k] for k in keys]
            if sum(sizes) <= limit or len(keys) < 2:
                tablet += 1
                continue
            half = sum(sizes) / 2
            index = next(i for i, run in enumerate(itertools.accumulate(sizes), 1) if run >= half)
            self.split_between(keys, min(index, len(keys) - 1))


def replay(
    writes: Sequence[Write],
    duration: float,
    config: ModelConfig,
    boundaries: Sequence[bytes] | None = None,
) -> Replay:
    """Replay ``writes`` (spanning ``duration`` seconds) window by window. With
    ``boundaries`` the layout is those real tablets, fixed; otherwise it is modelled."""
    modelled = boundaries is None
    layout = _Layout(boundaries or ())
    size_limit = sum({w.key: w.size for w in writes}.values()) / config.tablets
    shares, measured, tablet_counts = [], [], []
    for index, window in enumerate(_windows(writes, duration, config.window)):
        counts: Counter[int] = Counter()
        written: dict[int, set[bytes]] = {}
        for write in window:
            tablet = layout.tablet_of(write.key)
            counts[tablet] += 1
            written.setdefault(tablet, set()).add(write.key)
        shares.append(max(counts.values()) / len(window) if window else 0.0)
        measured.append(bool(window) and index * config.window >= config.warmup - 1e-9)
        tablet_counts.append(len(layout.boundaries) + 1)
        for write in window:
            layout.store(write)
        if modelled:
            layout.split_for_load(written, counts, len(window), config.tablets)
            layout.split_for_size(size_limit)
    return Replay(tuple(shares), tuple(measured), tuple(tablet_counts), tuple(layout.boundaries))


def nodes_needed(share: float, target_rows_per_s: float, node_rows_per_s: float) -> int | None:
    """Nodes that sustain ``target_rows_per_s`` writes when the busiest tablet takes
    ``share`` of them: the even spread ``ceil(target / node rate)``, or ``None`` when that
    one tablet alone exceeds a node (no cluster size helps: a tablet is served by one node).
    Assumes Bigtable balances the other tablets across nodes perfectly."""
    if share * target_rows_per_s > node_rows_per_s:
        return None
    return max(1, math.ceil(target_rows_per_s / node_rows_per_s))


def write_ceiling(share: float, node_rows_per_s: float) -> float:
    """The most writes per second the design takes on any cluster: the busiest tablet's
    node saturates first."""
    return node_rows_per_s / share if share > 0 else math.inf


def heatmap(
    writes: Sequence[Write], duration: float, window: float, buckets: int
) -> list[list[int]]:
    """Writes per (key bucket, window), Key Visualizer style: the run's distinct keys cut
    into ``buckets`` contiguous ranges holding (nearly) equal numbers of keys
    (https://cloud.google.com/bigtable/docs/keyvis-metrics). Row 0 is the lowest keys."""
    keys = sorted({w.key for w in writes})
    rows = max(1, min(buckets, len(keys)))
    rank = {key: i for i, key in enumerate(keys)}
    columns = window_count(duration, window)
    grid = [[0] * columns for _ in range(rows)]
    for write in writes:
        column = min(columns - 1, int(write.at // window))
        grid[rank[write.key] * rows // len(keys)][column] += 1
    return grid
