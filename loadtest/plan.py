"""The run's schedule, fixed in advance from the seed: when each operation is meant to start
and what it does. Open loop: the schedule never waits for responses.

Arrivals are constant (one every 1/rate s) or Poisson (exponential gaps with mean 1/rate).
Accounts are picked uniformly or with Zipf skew (popularity of the i-th account ∝ 1/i^s), the
usual model of hot keys.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from loadtest.config import LoadConfig


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
