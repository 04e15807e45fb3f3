"""A short open-loop run against the real ledger, relay and activity processes on the emulator
stack: every mode gets measured, strong reads and transfers are linearizable, money is
conserved, the stale modes are stale within their bounds, and the activity feed's
t-visibility is sampled."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from caplab.local.launcher import RunningService
from loadtest.config import LoadConfig
from loadtest.linearizability import LedgerVerdict
from loadtest.plan import schedule
from loadtest.report import analyse, print_console, write_report
from loadtest.runner import Endpoints, run_load
from tests.e2e.lab.lab_records import versions_observed, visible_samples
from tests.fixtures.services import ServiceRunner

ANSWERED = ("ok", "rejected")


def test_short_run_on_the_ledger_is_measured_and_checked(
    ledger: RunningService,
    services: ServiceRunner,
    fanout_service: Callable[[str], RunningService],
    tmp_path: Path,
) -> None:
    """Five seconds at 40 operations/s: the run performs exactly the seeded plan (200
    operations, each once, as planned); the report measures each kind over exactly the
    operations records.json holds for it; strong reads, snapshots and transfers are strictly
    serializable; every snapshot the run recorded conserves the opening money; no read is
    beyond its staleness bound; strong reads see every transfer the client saw commit before
    sending them, and exact-staleness reads demonstrably lag (one returned a version older
    than a transfer the client had already seen commit); the activity feed shows only the
    run's committed transfers, each visible sample a (read, transfer) pair the records show."""
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
    records: list[dict[str, Any]] = json.loads(paths["records"].read_text())
    saved = json.loads(paths["json"].read_text())

    # the run is the plan: every planned operation once, as planned
    plan = schedule(config, result.accounts)
    assert len(plan) == 200
    ran = sorted((r for r in records if r["kind"] != "create"), key=lambda r: r["seq"])
    assert [(r["seq"], r["kind"], r["account"], r["other"], r["amount"]) for r in ran] == [
        (seq, p.kind, p.account, p.other, p.amount) for seq, p in enumerate(plan)
    ]
    assert sorted(r["account"] for r in records if r["kind"] == "create") == result.accounts

    # each kind's figures count exactly that kind's measured operations
    measured = [r for r in ran if not r["warmup"]]
    for kind in config.mix:
        mine = [r for r in measured if r["kind"] == kind]
        assert mine, f"the plan has no measured {kind} operation"
        assert saved["modes"][kind]["count"] == len(mine), kind
        answered = sum(r["outcome"] in ANSWERED for r in mine)
        assert report.stats[kind].latency.get_total_count() == answered, kind

    assert report.serializability.verdict is LedgerVerdict.STRICTLY_SERIALIZABLE
    snapshots = [r for r in records if r["kind"] == "snapshot" and r["outcome"] == "ok"]
    assert snapshots, "no snapshot answered: the bank invariant was not exercised"
    assert report.bank.snapshots == len(snapshots)
    opening = config.initial_balance * config.accounts
    assert [sum(b for b, _ in r["snapshot"].values()) for r in snapshots] == [opening] * len(
        snapshots
    )
    assert report.bank.holds

    for mode, staleness in report.staleness.items():
        assert not staleness.bound_violations, mode
        assert not staleness.snapshot_violations, mode
        ok = [r for r in records if r["kind"] == mode and r["outcome"] == "ok"]
        assert staleness.reads + staleness.skipped == len(ok), mode
    for read in (r for r in records if r["kind"] == "strong" and r["outcome"] == "ok"):
        lowest, highest = versions_observed(records, read)
        assert lowest <= read["version"] <= highest, read["seq"]
    assert report.staleness["strong"].versions_behind == [0] * report.staleness["strong"].reads
    exact = [r for r in records if r["kind"] == "exact" and r["outcome"] == "ok"]
    lags = [versions_observed(records, r)[0] - r["version"] for r in exact]
    assert max(lags) >= 1, "no exact-staleness read lagged what the client had seen commit"
    assert max(report.staleness["exact"].versions_behind) >= max(lags)
    assert "strictly serializable" in console.file.getvalue()  # type: ignore[attr-defined]

    visible = visible_samples(records)
    assert visible, "no activity read showed a transfer committed before it"
    activity_reads = [r for r in records if r["kind"] == "activity" and r["outcome"] == "ok"]
    assert report.visibility is not None
    assert report.visibility.reads == len(activity_reads)
    assert sum(b.visible for b in report.visibility.bins) == visible
    assert paths["report"].read_text().count("<img") == 5
