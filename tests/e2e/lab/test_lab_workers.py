"""Beyond one process: ``caplab load --workers 2`` against the real ledger gives one report
and one checked history; Cloud Run Job shards (the task's environment variables) written to a
directory merge into one report; a worker measures its clock against the ledger."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import aiohttp
from rich.console import Console

from caplab.cli import main
from caplab.local.launcher import RunningService
from loadtest.client import LabClient
from loadtest.clock import LEDGER_MARGIN, LEDGER_SAMPLES, Clock, ledger_clock
from loadtest.config import LoadConfig
from loadtest.pool import open_session
from loadtest.records import Record
from loadtest.runner import START_LEAD, Endpoints, run_load

StandIn = Callable[..., AbstractContextManager[str]]


def test_two_workers_against_the_ledger_make_one_report_and_one_checked_history(
    ledger: RunningService, tmp_path: Path
) -> None:
    """Two generator processes, one plan: the report counts both workers, every operation of
    the plan appears once in one history, and ``caplab check`` passes it."""
    out = tmp_path / "run"
    status = main(["load", "--ledger-url", ledger.url, "--workers", "2", "--rate", "30",
                   "--duration", "3", "--warmup", "0.5", "--accounts", "4",
                   "--staleness", "300ms",
                   "--mix", "transfer=3,strong=4,exact=2,cached=2,snapshot=1",
                   "--out", str(out)])  # fmt: skip
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["workers"] == 2
    assert report["strict_serializability"]["verdict"] == "strictly serializable"
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "shard-0000-of-0002.json.gz",
        "shard-0001-of-0002.json.gz",
    ]
    records = json.loads((out / "records.json").read_text())
    plan = [r for r in records if r["kind"] != "create"]
    assert sorted(r["seq"] for r in plan) == list(range(90))  # 3 s x 30/s, each once
    # worker i ran every 2nd operation of the plan from the i-th on, and the report counts
    # for each worker exactly what the records show it ran
    assert all(r["seq"] % 2 == r["worker"] for r in plan)
    assert [(w["worker"], w["operations"]) for w in report["per_worker"]] == [(0, 45), (1, 45)]
    assert report["operations"] == len(plan)
    assert sum(r["kind"] == "create" for r in records) == 4  # one creation per account
    history = out / "history.json"
    assert main(["check", str(history), "--model", "ledger"]) == 0


def shard_process(standin: str, out: Path, index: int, start_at: str) -> subprocess.Popen[bytes]:
    """One Cloud Run Job task: the part and the run id come from the task's environment;
    every task gets the same ``--start-at``."""
    task = dict(
        os.environ,
        CLOUD_RUN_TASK_INDEX=str(index),
        CLOUD_RUN_TASK_COUNT="2",
        CLOUD_RUN_EXECUTION="caplab-load-x7k2p",
        CAPLAB_LOAD_SHARD_OUT=str(out),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "caplab", "load", "--ledger-url", standin, "--activity-url",
         standin, "--rate", "100", "--duration", "2", "--warmup", "0.2", "--accounts", "4",
         "--staleness", "100ms", "--start-at", start_at],
        env=task, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_cloud_run_job_shards_in_a_directory_merge_into_one_report(
    standin: StandIn, tmp_path: Path
) -> None:
    """Two tasks with CLOUD_RUN_TASK_INDEX 0 and 1 of CLOUD_RUN_TASK_COUNT 2 write their shards
    under the execution's run id; ``caplab load merge`` of that directory reports both."""
    shards = tmp_path / "bucket"
    with standin() as url:
        start_at = f"{time.time() + 4:.3f}"
        tasks = [shard_process(url, shards, i, start_at) for i in range(2)]
        outputs = [task.communicate(timeout=120)[0].decode() for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs
    run = shards / "lab-caplab-load-x7k2p"
    for index in range(2):
        document = json.loads(
            gzip.decompress((run / f"shard-000{index}-of-0002.json.gz").read_bytes())
        )
        assert document["part"] == {"index": index, "count": 2}
        assert document["records"]["count"] == 100
    out = tmp_path / "report"
    assert main(["load", "merge", str(run), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["run_id"] == "lab-caplab-load-x7k2p"
    assert report["workers"] == 2
    assert report["operations"] == 200
    # both tasks started their schedules at the one --start-at instant (host clock: offset 0)
    assert [w["start_offset_ms"] for w in report["per_worker"]] == [0.0, 0.0]


def test_a_worker_measures_its_clock_against_the_ledger(standin: StandIn) -> None:
    """Cristian's algorithm against the stand-in, which stamps reads with this machine's
    clock: the uncertainty is half the shortest of the probes' round trips plus
    LEDGER_MARGIN, and the true offset (zero) lies within that half round trip.

    The probes run one after another between the answer to the last account creation and
    the schedule's start (set START_LEAD after them), so the shortest round trip is at most
    that window divided by the number of probes: a bound from the run's own timestamps."""
    config = LoadConfig(rate=20, duration=0.5, warmup=0.1, accounts=2, mix={"strong": 1})
    with standin() as url:
        result = asyncio.run(
            run_load(config, Endpoints(url), Console(file=io.StringIO()), clock="ledger")
        )
    assert result.clock.source == "ledger"
    created = max(r.wall_invoked + (r.returned - r.invoked) for r in result.setup)
    window = result.started_wall - START_LEAD - created
    half_round_trip = result.clock.uncertainty - LEDGER_MARGIN
    assert 0 < half_round_trip <= window / LEDGER_SAMPLES / 2
    # the stand-in's read timestamp (µs) lies inside the probe: |offset| <= half its round trip
    assert abs(result.clock.offset) <= half_round_trip + 1e-6


class TimedClient(LabClient):
    """A LabClient that notes when each read began and ended, just inside the span
    :func:`ledger_clock` times around it."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        super().__init__(session, url)
        self.reads: list[tuple[float, float]] = []

    async def read(self, record: Record) -> Record:
        began = time.time()
        try:
            return await super().read(record)
        finally:
            self.reads.append((began, time.time()))


def test_ledger_clock_uncertainty_is_half_the_shortest_probe_round_trip(standin: StandIn) -> None:
    """``ledger_clock`` takes LEDGER_SAMPLES strong reads and reports LEDGER_MARGIN plus half
    the shortest round trip as its uncertainty. Each round trip it timed contains the span
    the test timed inside it and lies within the span from the previous read's end to the
    next one's start, so half the shortest round trip lies between half the shortest inner
    span and half the shortest outer one; the true offset (zero: the stand-in stamps reads
    with this machine's clock) lies within half that round trip."""

    async def measure(url: str) -> tuple[TimedClient, Clock]:
        async with open_session(connections=1, timeout=10) as session:
            client = TimedClient(session, url)
            account = Record(seq=-1, kind="create", account="clock-probe", intended=0.0)
            assert (await client.create_account(account, 100)).outcome == "ok"
            return client, await ledger_clock(client, account.account)

    with standin() as url:
        client, clock = asyncio.run(measure(url))
    reads = client.reads
    assert len(reads) == LEDGER_SAMPLES
    inner = min(end - began for began, end in reads)
    outer = min(nxt[0] - prev[1] for prev, nxt in zip(reads, reads[2:], strict=False))
    half_round_trip = clock.uncertainty - LEDGER_MARGIN
    assert inner / 2 <= half_round_trip <= outer / 2
    assert abs(clock.offset) <= half_round_trip + 1e-6  # the stand-in's timestamps are in µs
