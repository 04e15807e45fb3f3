"""What a load run does: rate, duration, operation mix, accounts, skew, staleness, seed."""

from __future__ import annotations

from dataclasses import dataclass, field

from caplab.core.durations import DurationError, parse_duration
from caplab.core.errors import CaplabError

READ_MODES = ("strong", "exact", "bounded", "cached")
OPERATIONS = ("transfer", *READ_MODES, "snapshot", "activity")
"""Operation kinds of the mix: transfers, balance reads per consistency mode, a strong
snapshot of every run account (the bank invariant) and activity-feed reads."""

DEFAULT_MIX = {
    "transfer": 10,
    "strong": 25,
    "exact": 20,
    "bounded": 20,
    "cached": 20,
    "snapshot": 2,
    "activity": 3,
}
MAX_SNAPSHOT_ACCOUNTS = 100
"""The ledger answers snapshots of at most 100 accounts."""


class LoadConfigError(CaplabError):
    pass


def parse_mix(text: str) -> dict[str, float]:
    """``"transfer=10,strong=30,exact=60"`` → weights (missing kinds weigh 0)."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in OPERATIONS:
            raise LoadConfigError(
                f"--mix: unknown operation {name!r} (one of {', '.join(OPERATIONS)})"
            )
        try:
            mix[name] = float(weight)
        except ValueError as error:
            raise LoadConfigError(
                f"--mix: {part!r} needs a numeric weight (name=weight)"
            ) from error
        if mix[name] < 0:
            raise LoadConfigError(f"--mix: weight of {name!r} must not be negative")
    if sum(mix.values()) <= 0:
        raise LoadConfigError("--mix: give at least one positive weight")
    return mix


@dataclass(frozen=True)
class LoadConfig:
    """One run. Times in seconds; money in cents."""

    rate: float = 100.0
    duration: float = 30.0
    warmup: float = 2.0
    arrivals: str = "constant"  # or "poisson"
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    accounts: int = 20
    initial_balance: int = 10_000
    max_amount: int = 500
    zipf: float = 0.0  # exponent s of the account popularity; 0 = uniform
    staleness: str = "2s"  # for exact, bounded and cached reads
    activity_limit: int = 20
    seed: int = 1
    timeout: float = 10.0  # per request; a transfer that times out has an unknown outcome
    max_in_flight: int = 2_000  # beyond it an arrival is dropped (counted), never delayed
    connections: int = 64
    late_threshold: float = 0.001  # a start later than this after its intended time is late

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration <= 0 or self.warmup < 0:
            raise LoadConfigError("rate and duration must be positive, warm-up not negative")
        if self.warmup >= self.duration:
            raise LoadConfigError("the warm-up must be shorter than the run")
        if self.arrivals not in ("constant", "poisson"):
            raise LoadConfigError("arrivals are 'constant' or 'poisson'")
        try:
            parse_duration(self.staleness)
        except DurationError as error:
            raise LoadConfigError(f"--staleness: {error}") from error
        if self.accounts < 2:
            raise LoadConfigError("transfers need at least 2 accounts")
        if self.mix.get("snapshot", 0) > 0 and self.accounts > MAX_SNAPSHOT_ACCOUNTS:
            raise LoadConfigError(
                f"snapshots read every account at once: use at most {MAX_SNAPSHOT_ACCOUNTS} "
                "accounts, or snapshot=0 in --mix"
            )
