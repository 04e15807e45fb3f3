"""Phases, availability over time and the report's pages: per-phase availability counts the
answered arrivals of each phase; the tables hold formatted numbers, never Python structures;
report.json carries workers and phases; the page has the headline and availability charts."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from loadtest.config import LoadConfig
from loadtest.phases import Phase, summarise, timeline
from loadtest.records import ERROR, OK, Record
from loadtest.report import (
    VISIBILITY_EDGES_MS,
    analyse,
    latency_rows,
    phase_rows,
    staleness_rows,
    to_json,
    worker_rows,
    write_report,
)
from loadtest.runner import Endpoints, RunResult

T0 = 1_800_000_000.0
ACCOUNTS = ["a", "b"]


def partitioned_run() -> RunResult:
    """Ten seconds, one strong read and one exact read every 0.1 s; strong reads scheduled in
    [4, 7) fail, exact reads all answer (version 1, never stale: nothing commits)."""
    config = LoadConfig(rate=20, duration=10, warmup=0.5, accounts=2, mix={"strong": 1, "exact": 1})
    setup = [
        Record(seq=-1 - i, kind="create", account=a, intended=-1, invoked=-1, returned=-0.99,
               wall_invoked=T0 - 1, outcome=OK, balance=100, version=1,
               commit_timestamp=T0 - 1, created=True)
        for i, a in enumerate(ACCOUNTS)
    ]  # fmt: skip
    records = []
    for i in range(100):
        for j, kind in enumerate(("strong", "exact")):
            at = i * 0.1
            failed = kind == "strong" and 4 <= at < 7
            records.append(
                Record(seq=2 * i + j, kind=kind, account=ACCOUNTS[i % 2], intended=at,
                       invoked=at, returned=at + (1.0 if failed else 0.004),
                       wall_invoked=T0 + at, warmup=at < 0.5,
                       outcome=ERROR if failed else OK,
                       balance=None if failed else 100, version=None if failed else 1,
                       read_timestamp=None if failed else T0 + at - (kind == "exact"),
                       served_by="" if failed else "leader", staleness_bound=None)
            )  # fmt: skip
    return RunResult(config, "run", ACCOUNTS, Endpoints("http://127.0.0.1:1"), records, setup,
                     started_wall=T0, wall_offset=T0)  # fmt: skip


PHASES = (
    Phase("baseline", T0, T0 + 4),
    Phase("partition", T0 + 4, T0 + 7),
    Phase("healed", T0 + 7, T0 + 10),
)


def test_availability_per_phase_counts_answered_arrivals_outside_the_warmup() -> None:
    result = partitioned_run()
    phases = {s.phase.name: s for s in summarise(result, PHASES)}
    baseline, partition, healed = phases["baseline"], phases["partition"], phases["healed"]
    assert (baseline.modes["strong"].attempted, baseline.modes["strong"].answered) == (35, 35)
    assert (partition.modes["strong"].attempted, partition.modes["strong"].answered) == (30, 0)
    assert partition.modes["exact"].availability == 1.0
    assert healed.modes["strong"].availability == 1.0
    assert partition.modes["exact"].staleness is not None
    assert partition.modes["exact"].staleness.reads == 30
    assert partition.modes["strong"].latency.get_total_count() == 0
    document = partition.to_json(T0)
    assert (document["start_s"], document["end_s"]) == (4.0, 7.0)
    assert document["modes"]["strong"]["availability"] == 0.0


def test_availability_timeline_shows_the_gap() -> None:
    line = timeline(partitioned_run(), buckets=20)
    assert line.bucket == 0.5
    strong = line.availability["strong"]
    assert strong[:8] == [1.0] * 8
    assert strong[8:14] == [0.0] * 6
    assert strong[14:] == [1.0] * 6
    assert line.availability["exact"] == [1.0] * 20
    assert not any(math.isnan(v) for v in strong)


def test_tables_hold_formatted_numbers_and_the_report_carries_workers_and_phases(
    tmp_path: Path,
) -> None:
    report = analyse(partitioned_run(), phases=PHASES)
    tables = [latency_rows(report), staleness_rows(report), worker_rows(report), phase_rows(report)]
    for rows in tables:
        assert rows
        for row in rows:
            for cell in row:
                assert not re.search(r"[{}\[\]]|\d\.\d{4,}", cell), cell  # no dicts, no raw floats
    document = to_json(report)
    assert document["workers"] == 1
    assert document["per_worker"][0]["operations"] == 200
    assert [p["name"] for p in document["phases"]] == ["baseline", "partition", "healed"]
    paths = write_report(report, tmp_path)
    page = paths["report"].read_text()
    assert "alt='trade-off'" in page
    assert "alt='availability'" in page
    assert "<h2>Phases</h2>" in page
    assert json.loads(paths["json"].read_text())["phases"][1]["modes"]["strong"]["answered"] == 0
    assert len(VISIBILITY_EDGES_MS) > 20


def test_a_resolved_unknown_transfer_is_a_completed_operation_for_the_checkers() -> None:
    """A transfer answered 503 but committed (as a partition's held bytes arrive later), then
    resolved by its Idempotency-Key replay: the checkers see it committed between its call
    and the replay's answer, so a later read of its version is fresh and legal; statistics
    still count the error the user saw."""
    config = LoadConfig(duration=10, warmup=0, accounts=2, mix={"transfer": 1, "strong": 1})
    setup = [
        Record(seq=-1 - i, kind="create", account=a, intended=0, invoked=0, returned=0.01,
               wall_invoked=T0, outcome=OK, balance=100, version=1, commit_timestamp=T0,
               created=True)
        for i, a in enumerate(ACCOUNTS)
    ]  # fmt: skip
    transfer = Record(seq=1, kind="transfer", account="a", other="b", amount=10, intended=1,
                      invoked=1, returned=2, wall_invoked=T0 + 1, outcome="unknown",
                      error="503", idempotency_key="k", resolved=OK, resolved_returned=5,
                      transfer_id="t", from_version=2, to_version=2,
                      commit_timestamp=T0 + 1.5)  # fmt: skip
    read = Record(seq=2, kind="strong", account="b", intended=3, invoked=3, returned=3.01,
                  wall_invoked=T0 + 3, outcome=OK, balance=110, version=2,
                  read_timestamp=T0 + 3, served_by="leader")  # fmt: skip
    result = RunResult(config, "run", ACCOUNTS, Endpoints("http://127.0.0.1:1"),
                       [transfer, read], setup, started_wall=T0, wall_offset=T0)  # fmt: skip
    report = analyse(result)
    assert not report.serializability.anomalies
    assert not report.staleness["strong"].snapshot_violations
    assert report.staleness["strong"].reads == 1
    assert report.stats["transfer"].errors == 1
    assert report.checked is not None
    assert report.checked.records[0].outcome == OK
    assert report.checked.records[0].returned == 5
