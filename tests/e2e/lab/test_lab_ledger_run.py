"""A short open-loop run against the real ledger, relay and activity processes on the emulator
stack: every mode gets measured, strong reads and transfers are linearizable, money is
conserved, the stale modes are stale within their bounds, and the activity feed's
t-visibility is sampled."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from caplab.local.launcher import RunningService
from loadtest.config import LoadConfig
from loadtest.linearizability import LedgerVerdict
from loadtest.report import analyse, print_console, write_report
from loadtest.runner import Endpoints, run_load
from tests.fixtures.services import ServiceRunner


def test_short_run_on_the_ledger_is_measured_and_checked(
    ledger: RunningService,
    services: ServiceRunner,
    fanout_service: Callable[[str], RunningService],
    tmp_path: Path,
) -> None:
    """Five seconds at 40 operations/s: non-empty histograms for every mode, a strictly
    serializable verdict for strong reads, snapshots and transfers, the bank invariant in
    every snapshot, no read beyond its staleness bound, exact-staleness reads that really
    lag, and transfers that show up in the activity feed."""
    config = LoadConfig(
        rate=40,
        duration=5.0,
        warmup=1.0,
        accounts=5,
        staleness="500ms",
        mix={"transfer": 20, "strong": 25, "exact": 20, "bounded": 15, "cached": 15,
             "snapshot": 5, "activity": 8},
    )  # fmt: skip
    console = Console(file=io.StringIO(), width=120)
    activity = fanout_service("activity")
    with services.restartable("relay", {"CAPLAB_RELAY_POLL_INTERVAL": "20ms"}):
        result = asyncio.run(run_load(config, Endpoints(ledger.url, activity.url), console))
    report = analyse(result)
    print_console(report, console)
    paths = write_report(report, tmp_path)

    for kind in ("transfer", "strong", "exact", "bounded", "cached", "snapshot", "activity"):
        assert report.stats[kind].latency.get_total_count() > 0, kind
    assert report.serializability.verdict is LedgerVerdict.STRICTLY_SERIALIZABLE
    assert report.bank.snapshots > 0
    assert report.bank.holds
    for mode, staleness in report.staleness.items():
        assert not staleness.bound_violations, mode
        assert not staleness.snapshot_violations, mode
    assert report.staleness["strong"].fresh_fraction == 1.0
    assert max(report.staleness["exact"].versions_behind) >= 1
    assert "strictly serializable" in console.file.getvalue()  # type: ignore[attr-defined]
    assert report.visibility is not None
    assert report.visibility.samples > 0
    assert any(b.visible for b in report.visibility.bins)
    assert paths["report"].read_text().count("<img") == 5
