"""The run's schedule, fixed in advance from the seed: when each operation is meant to start
and what it does. Open loop: the schedule never waits for responses.

Arrivals are constant (one every 1/rate s) or Poisson (exponential gaps with mean 1/rate).
Accounts are picked uniformly or with Zipf skew (popularity of the i-th account ∝ 1/i^s), the
usual model of hot keys.

Several generators share one plan: every generator builds the same schedule from the seed and
keeps its :class:`Part` of it, every ``count``-th operation from its ``index`` on. Each keeps
the operation's position in the whole plan as its sequence number, so the parts merge back
into exactly the plan's operations, and each part's arrivals are spread over the whole run.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass

from caplab.core.errors import CaplabError
from loadtest.config import LoadConfig

TASK_INDEX, TASK_COUNT = "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT"
"""What Cloud Run Jobs sets in each task
(https://cloud.google.com/run/docs/container-contract#env-vars)."""


@dataclass(frozen=True)
class Part:
    """Generator ``index`` of ``count`` (0-based)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise CaplabError(f"a part is INDEX/COUNT with 0 <= INDEX < COUNT, not {self}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @classmethod
    def parse(cls, text: str) -> Part:
        """``"3/20"`` → part 3 of 20."""
        index, _, count = text.partition("/")
        try:
            return cls(int(index), int(count))
        except ValueError as error:
            raise CaplabError(f"--shard: write INDEX/COUNT (e.g. 3/20), not {text!r}") from error

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Part:
        """The Cloud Run Jobs task's part (``CLOUD_RUN_TASK_INDEX`` of ``…_COUNT``); the
        whole plan outside a job."""
        if TASK_COUNT not in environ:
            return cls()
        try:
            return cls(int(environ.get(TASK_INDEX, "0")), int(environ[TASK_COUNT]))
        except ValueError as error:
            raise CaplabError(f"{TASK_INDEX}/{TASK_COUNT} are not integers") from error


@dataclass(frozen=True)
class Planned:
    """One operation of the schedule. ``at`` is seconds after the run's start."""

    at: float
    kind: str
    account: str
    other: str = ""  # the transfer's target
    amount: int = 0


def account_ids(run_id: str, count: int) -> list[str]:
    return [f"{run_id}-{i:04d}" for i in range(count)]


def arrival_times(config: LoadConfig, rng: random.Random) -> list[float]:
    if config.arrivals == "constant":
        return [i / config.rate for i in range(int(config.duration * config.rate))]
    times, at = [], rng.expovariate(config.rate)
    while at < config.duration:
        times.append(at)
        at += rng.expovariate(config.rate)
    return times


def schedule(config: LoadConfig, accounts: list[str]) -> list[Planned]:
    """The whole run's operations in start order (deterministic for a given seed)."""
    rng = random.Random(config.seed)
    kinds = [k for k, w in config.mix.items() if w > 0]
    kind_weights = list(itertools.accumulate(config.mix[k] for k in kinds))
    popularity = list(
        itertools.accumulate(1 / (rank**config.zipf) for rank in range(1, len(accounts) + 1))
    )
    planned = []
    for at in arrival_times(config, rng):
        kind = rng.choices(kinds, cum_weights=kind_weights)[0]
        account = rng.choices(accounts, cum_weights=popularity)[0]
        if kind != "transfer":
            planned.append(Planned(at, kind, account))
            continue
        other = account
        while other == account:
            other = rng.choices(accounts, cum_weights=popularity)[0]
        planned.append(Planned(at, kind, account, other, rng.randint(1, config.max_amount)))
    return planned


def part_of(plan: list[Planned], part: Part) -> list[tuple[int, Planned]]:
    """The operations of ``part``, each with its sequence number in the whole plan."""
    return list(enumerate(plan))[part.index :: part.count]
