"""Parts of one plan, shards in a directory and their merge: the parts cover the plan exactly
once; records survive the column form; merged histograms equal the histogram of the union;
every time moves to the reference clock; creations are deduplicated; a merge refuses what it
could not check soundly."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path

import pytest

from caplab.core.errors import CaplabError
from loadtest.clock import HOST, Clock
from loadtest.config import LoadConfig
from loadtest.merge import merge
from loadtest.plan import Part, account_ids, part_of, schedule
from loadtest.records import ERROR, OK, REJECTED, UNKNOWN, Record, from_columns, to_columns
from loadtest.runner import Endpoints, RunResult
from loadtest.shards import DirectoryStore, ShardError, open_store, read_shards, write_shard
from loadtest.stats import histogram_of, kind_stats

CONFIG = LoadConfig(rate=200, duration=4, warmup=0.5, accounts=4)
ACCOUNTS = account_ids("run", CONFIG.accounts)
T0 = 1_800_000_000.0


def test_parts_cover_the_plan_exactly_once_in_order() -> None:
    plan = schedule(CONFIG, ACCOUNTS)
    parts = [part_of(plan, Part(i, 3)) for i in range(3)]
    seqs = sorted(seq for part in parts for seq, _ in part)
    assert seqs == list(range(len(plan)))
    for part in parts:
        assert [p for _, p in part] == [plan[seq] for seq, _ in part]
        assert abs(len(part) - len(plan) / 3) <= 1  # each worker gets a third, spread out
    assert Part.from_environ({"CLOUD_RUN_TASK_INDEX": "2", "CLOUD_RUN_TASK_COUNT": "5"}) == Part(
        2, 5
    )
    assert Part.from_environ({}) == Part(0, 1)
    assert Part.parse("3/20") == Part(3, 20)
    for bad in ("3", "20/3", "a/b", "-1/2"):
        with pytest.raises(CaplabError):
            Part.parse(bad)


def sample_records(seed: int, count: int, worker: int = 0) -> list[Record]:
    """Records of every shape: reads, transfers of each outcome, snapshots, activity reads."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        kind = rng.choice(["strong", "exact", "transfer", "snapshot", "activity"])
        at = 100.0 + i * 0.005
        r = Record(seq=i * 2 + worker, kind=kind, account=rng.choice(ACCOUNTS), intended=at,
                   invoked=at + rng.uniform(0, 0.002), warmup=at < 100.5)  # fmt: skip
        r.returned = r.invoked + rng.uniform(0.001, 0.050)
        r.wall_invoked = T0 + r.invoked - 100.0
        r.outcome = rng.choice([OK, OK, OK, ERROR, REJECTED, UNKNOWN])
        if kind == "transfer":
            r.other, r.amount, r.transfer_id = ACCOUNTS[0], rng.randint(1, 50), f"t{i}"
            r.from_version, r.to_version, r.commit_timestamp = i + 2, i + 3, r.wall_invoked + 0.001
        elif kind == "snapshot":
            r.snapshot = {a: [100, 1] for a in ACCOUNTS}
            r.total = 100 * len(ACCOUNTS)
        elif kind == "activity":
            r.activity = [(f"t{j}", T0 + j) for j in range(rng.randint(0, 3))]
            r.complete_page = True
        else:
            r.balance, r.version, r.read_timestamp = 100, 1, r.wall_invoked
            r.served_by, r.staleness_bound = "leader", 2.0
        records.append(r)
    return records


def test_records_survive_the_column_form() -> None:
    records = sample_records(1, 300)
    columns = to_columns(records)
    assert columns["created"] is None  # at its default everywhere: not stored
    assert from_columns(columns, len(records)) == records
    assert from_columns(to_columns([]), 0) == []
    with pytest.raises(ValueError, match="values for"):
        from_columns(columns, len(records) + 1)


def worker_run(
    index: int, count: int, wall_offset: float = T0 - 100.0, clock: Clock = HOST
) -> RunResult:
    setup = [
        Record(seq=-1 - i, kind="create", account=a, intended=99.0, invoked=99.0,
               returned=99.01, wall_invoked=T0 - 1, outcome=OK, balance=100, version=1,
               commit_timestamp=T0 - 1, created=(i % count == index))
        for i, a in enumerate(ACCOUNTS)
    ]  # fmt: skip
    result = RunResult(
        CONFIG, "run", ACCOUNTS, Endpoints("http://127.0.0.1:1"),
        records=sample_records(10 + index, 400, worker=index), setup=setup,
        started_wall=T0, dropped=Counter({"strong": index}), part=Part(index, count),
        wall_offset=wall_offset, clock=clock,
    )  # fmt: skip
    return result


def test_merged_histograms_equal_the_histogram_of_the_union(tmp_path: Path) -> None:
    """Three shards written and read back: each kind's merged latency and service-time
    histograms are, count for count, the histograms of all three workers' records together;
    outcome counts, late starts and drops add up."""
    runs = [worker_run(i, 3) for i in range(3)]
    store = DirectoryStore(tmp_path)
    for run in runs:
        write_shard(run, store)
    merged = merge(read_shards(store))
    union = dataclasses.replace(runs[0], records=[r for run in runs for r in run.records])
    expected = kind_stats(union)
    assert set(merged.stats) == set(expected)
    for kind, stats in expected.items():
        assert merged.stats[kind].latency.equals(stats.latency), kind
        assert merged.stats[kind].service.equals(stats.service), kind
        assert merged.stats[kind].outcomes == stats.outcomes
        assert merged.stats[kind].late == stats.late
    assert sum(merged.result.dropped.values()) == 0 + 1 + 2
    lags = histogram_of(max(0.0, r.lag) for r in union.records if not r.warmup and r.invoked)
    assert merged.lag.equals(lags)
    assert [w.operations for w in merged.workers] == [400, 400, 400]


def test_every_time_moves_to_the_reference_clock_and_widens_by_the_uncertainty(
    tmp_path: Path,
) -> None:
    """Worker 1's wall clock runs 30 ms ahead (declared offset 30 ms ± 2 ms): its records come
    back 30 ms earlier, with call 2 ms earlier and return 2 ms later; worker 0 is exact. Each
    record names its worker; only the creations that created an account remain."""
    runs = [worker_run(0, 2), worker_run(1, 2, clock=Clock(0.030, 0.002, "declared"))]
    originals = {r.seq: dataclasses.replace(r) for run in runs for r in run.records}
    store = DirectoryStore(tmp_path)
    for run in runs:
        write_shard(run, store)
    merged = merge(read_shards(store)).result
    assert merged.wall_offset == 0.0
    assert [r.seq for r in merged.records] == sorted(originals)
    for r in merged.records:
        before = originals[r.seq]
        shift, widen = (0.0, 0.0) if r.worker == 0 else (0.030, 0.002)
        assert r.worker == r.seq % 2
        assert r.intended == pytest.approx(before.intended + T0 - 100.0 - shift, abs=1e-6)
        assert r.invoked == pytest.approx(before.invoked + T0 - 100.0 - shift - widen, abs=1e-6)
        assert r.returned == pytest.approx(before.returned + T0 - 100.0 - shift + widen, abs=1e-6)
        assert r.wall_invoked == pytest.approx(before.wall_invoked - shift - widen, abs=1e-6)
        assert r.latency == pytest.approx(before.latency + widen, abs=1e-6)
    assert sorted(r.account for r in merged.setup) == ACCOUNTS
    assert all(r.created for r in merged.setup)


def test_a_merge_refuses_missing_doubled_or_foreign_parts(tmp_path: Path) -> None:
    runs = [worker_run(i, 3) for i in range(3)]
    missing = DirectoryStore(tmp_path / "missing")
    for run in runs[:2]:
        write_shard(run, missing)
    with pytest.raises(ShardError, match=r"parts \[2\] of 3 are missing"):
        merge(read_shards(missing))
    foreign = DirectoryStore(tmp_path / "foreign")
    write_shard(runs[0], foreign)
    write_shard(dataclasses.replace(runs[1], run_id="other"), foreign)
    write_shard(runs[2], foreign)
    with pytest.raises(ShardError, match="two runs"):
        merge(read_shards(foreign))
    with pytest.raises(ShardError, match="one shard per part"):
        write_shard(runs[0], foreign)
    uncreated = DirectoryStore(tmp_path / "uncreated")
    for run in runs:
        for record in run.setup:
            record.created = False
        write_shard(run, uncreated)
    with pytest.raises(ShardError, match="existed before the run"):
        merge(read_shards(uncreated))
    with pytest.raises(ShardError, match="no shard directory"):
        list(read_shards(DirectoryStore(tmp_path / "nowhere")))


def test_shard_locations_are_a_directory_or_a_bucket() -> None:
    assert open_store("/tmp/x") == DirectoryStore(Path("/tmp/x"))
    bucket = open_store("gs://my-bucket/runs/lab-1/")
    assert (bucket.bucket, bucket.prefix) == ("my-bucket", "runs/lab-1")  # type: ignore[attr-defined]
    for bad in ("gs://Bad_Bucket/x", "s3://bucket/x", "https://example.com/x"):
        with pytest.raises(ShardError):
            open_store(bad)
