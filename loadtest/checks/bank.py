"""The bank invariant (Jepsen's *bank* workload): transfers move money, never create or
destroy it, so every snapshot of all the run's accounts — read at one timestamp — must add
up to the initial total."""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.records import OK
from loadtest.runner import RunResult


@dataclass(frozen=True)
class BankViolation:
    seq: int
    total: int
    read_timestamp: float | None


@dataclass(frozen=True)
class BankResult:
    expected_total: int
    snapshots: int
    violations: tuple[BankViolation, ...]

    @property
    def holds(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, object]:
        return {
            "expected_total_cents": self.expected_total,
            "snapshots": self.snapshots,
            "holds": self.holds,
            "violations": [v.__dict__ for v in self.violations],
        }


def check_bank(result: RunResult) -> BankResult:
    expected = result.config.initial_balance * len(result.accounts)
    snapshots = [r for r in result.records if r.kind == "snapshot" and r.outcome == OK]
    violations = tuple(
        BankViolation(r.seq, sum(b for b, _ in r.snapshot.values()), r.read_timestamp)
        for r in snapshots
        if sum(b for b, _ in r.snapshot.values()) != expected
        or set(r.snapshot) != set(result.accounts)
    )
    return BankResult(expected, len(snapshots), violations)
