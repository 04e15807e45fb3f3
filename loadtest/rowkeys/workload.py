"""The row-key lab's workload: the lab's own transfer stream (:func:`loadtest.plan.schedule`,
transfers only: seeded arrivals, Zipf-skewed accounts), projected as the activity service
projects a transfer: two rows, the debited side (negative amount) and the credited side.

Every side carries the cells the activity projection writes (``transfer_id``,
``counterparty``, ``amount_cents``, ``committed_at``) plus ``account``, so a row can be
recognised whatever its key looks like.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from caplab.core.timestamps import rfc3339
from loadtest.config import LoadConfig
from loadtest.plan import account_ids, schedule

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WorkloadConfig:
    """Transfers per second, for how long, over how many accounts with which skew."""

    rate: float = 100.0
    duration: float = 10.0
    accounts: int = 1000
    zipf: float = 1.0
    seed: int = 1
    arrivals: str = "poisson"

    def __post_init__(self) -> None:
        self.as_load_config()

    def as_load_config(self) -> LoadConfig:
        """The lab's load configuration of the same stream (its checks apply: a bad value
        raises :class:`~loadtest.config.LoadConfigError`)."""
        return LoadConfig(
            rate=self.rate,
            duration=self.duration,
            warmup=0.0,
            arrivals=self.arrivals,
            mix={"transfer": 1.0},
            accounts=self.accounts,
            zipf=self.zipf,
            seed=self.seed,
        )


@dataclass(frozen=True)
class Side:
    """One projected row: one account's side of one committed transfer."""

    at: float
    """Seconds after the run's start."""
    account: str
    counterparty: str
    amount_cents: int
    committed_at: datetime
    transfer_id: str

    @property
    def identity(self) -> tuple[str, str]:
        return self.account, self.transfer_id

    def cells(self) -> dict[str, bytes]:
        """The row's cells (column -> value) in family ``t``."""
        return {
            "account": self.account.encode(),
            "transfer_id": self.transfer_id.encode(),
            "counterparty": self.counterparty.encode(),
            "amount_cents": str(self.amount_cents).encode(),
            "committed_at": rfc3339(self.committed_at).encode(),
        }


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch."""
    return (moment - EPOCH) // timedelta(microseconds=1)


def sides(config: WorkloadConfig, start: datetime) -> list[Side]:
    """Both rows of every transfer of the run, in commit order (deterministic per seed).
    A transfer planned ``at`` seconds into the run commits at ``start + at``."""
    accounts = account_ids("acct", config.accounts)
    ids = random.Random(f"{config.seed}/transfer-ids")
    rows: list[Side] = []
    for planned in schedule(config.as_load_config(), accounts):
        transfer_id = uuid.UUID(int=ids.getrandbits(128), version=4).hex
        committed = start + timedelta(microseconds=round(planned.at * 1e6))
        rows.append(
            Side(
                planned.at, planned.account, planned.other, -planned.amount, committed, transfer_id
            )
        )
        rows.append(
            Side(planned.at, planned.other, planned.account, planned.amount, committed, transfer_id)
        )
    return rows
