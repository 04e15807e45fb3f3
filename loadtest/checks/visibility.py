"""t-visibility of the activity feed (PBS): the probability that a transfer is visible in the
feed t after it committed, as a curve over t.

Each activity read issued at wall-clock moment ``m`` for account ``a`` is a sample for every
transfer touching ``a`` that committed before ``m``: visible or not, at age t = m − commit
time. A page that was cut (``next_page_token`` set) only vouches for transfers at least as new
as its oldest item, so older ones are not sampled from it.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass

from loadtest.records import OK
from loadtest.runner import RunResult

DEFAULT_EDGES_MS = (0, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, math.inf)


@dataclass(frozen=True)
class VisibilityBin:
    low_ms: float
    high_ms: float
    samples: int
    visible: int

    @property
    def probability(self) -> float:
        return self.visible / self.samples if self.samples else math.nan


@dataclass(frozen=True)
class Visibility:
    reads: int
    samples: int
    bins: tuple[VisibilityBin, ...]
    never_seen: int  # transfers sampled by some read yet never shown by any

    def to_json(self) -> dict[str, object]:
        return {
            "reads": self.reads,
            "samples": self.samples,
            "never_seen": self.never_seen,
            "curve": [
                {
                    "from_ms": b.low_ms,
                    "to_ms": None if math.isinf(b.high_ms) else b.high_ms,
                    "samples": b.samples,
                    "p_visible": None if not b.samples else round(b.probability, 4),
                }
                for b in self.bins
            ],
        }


def check_visibility(
    result: RunResult, edges_ms: tuple[float, ...] = DEFAULT_EDGES_MS
) -> Visibility | None:
    """None when the run made no activity reads (no activity URL)."""
    reads = [r for r in result.records if r.kind == "activity" and r.outcome == OK]
    if not reads:
        return None
    commits: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for r in result.records:
        if r.kind == "transfer" and r.outcome == OK and r.commit_timestamp is not None:
            commits[r.account].append((r.commit_timestamp, r.transfer_id))
            commits[r.other].append((r.commit_timestamp, r.transfer_id))
    samples: list[tuple[float, bool]] = []
    sampled: set[str] = set()
    seen: set[str] = set()
    for read in reads:
        visible = {transfer_id for transfer_id, _ in read.activity}
        seen |= visible
        oldest = min((at for _, at in read.activity), default=-math.inf)
        for committed, transfer_id in commits[read.account]:
            if committed > read.wall_invoked:
                continue
            if not read.complete_page and committed < oldest:
                continue
            samples.append(((read.wall_invoked - committed) * 1000, transfer_id in visible))
            sampled.add(transfer_id)
    bins = []
    for low, high in itertools.pairwise(edges_ms):
        inside = [v for age, v in samples if low <= age < high]
        bins.append(VisibilityBin(low, high, len(inside), sum(inside)))
    return Visibility(len(reads), len(samples), tuple(bins), len(sampled - seen))
