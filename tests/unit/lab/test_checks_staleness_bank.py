"""The staleness and bank checks on crafted runs, every figure worked out by hand.

Times are offsets from ``T0`` in powers of two (0.25 s, 1/64 s...), so every difference is
exact in binary floating point and the expected milliseconds are exact too.
"""

from __future__ import annotations

import dataclasses

from loadtest.checks.bank import check_bank
from loadtest.checks.staleness import CommitLog, ModeStaleness, check_staleness
from loadtest.config import LoadConfig
from loadtest.records import ERROR, OK, UNKNOWN, Record, resolved_view
from loadtest.runner import Endpoints, RunResult

T0 = 1_800_000_000.0


def run(records: list[Record], accounts: tuple[str, ...] = ("a", "b"), balance: int = 100):
    """A run whose accounts were each created at version 1, committed at T0."""
    config = LoadConfig(accounts=len(accounts), initial_balance=balance, duration=10, warmup=1)
    setup = [
        Record(seq=-1 - i, kind="create", account=a, intended=0, outcome=OK, balance=balance,
               version=1, commit_timestamp=T0)
        for i, a in enumerate(accounts)
    ]  # fmt: skip
    return RunResult(config, "run", list(accounts), Endpoints("http://x"), records, setup)


def transfer(seq: int, commit: float, version: int, **changes: object) -> Record:
    """A committed transfer a → b that gave both accounts ``version``, at T0 + ``commit``."""
    record = Record(seq=seq, kind="transfer", account="a", other="b", amount=10,
                    intended=commit, outcome=OK, from_version=version, to_version=version,
                    commit_timestamp=T0 + commit)  # fmt: skip
    return dataclasses.replace(record, **changes)


def read(seq: int, kind: str, at: float, version: int | None, read_ts: float | None,
         bound: float | None = 2.0, account: str = "a", served_by: str = "spanner",
         outcome: str = OK) -> Record:  # fmt: skip
    """A ``kind`` read issued at T0 + ``at`` that returned ``version`` as of T0 + ``read_ts``."""
    return Record(seq=seq, kind=kind, account=account, intended=at, wall_invoked=T0 + at,
                  outcome=outcome, version=version, served_by=served_by,
                  read_timestamp=None if read_ts is None else T0 + read_ts,
                  staleness_bound=bound)  # fmt: skip


TWO_TRANSFERS = [transfer(1, 1.0, 2), transfer(2, 2.0, 3)]
"""Versions of a (and b): 1 from T0, 2 from T0 + 1 s, 3 from T0 + 2 s."""


def test_each_read_is_measured_in_versions_and_seconds_behind_the_newest() -> None:
    """k = newest(m) − v and t = m − commit time of v+1; a read bound below t violates it, a
    version that is not the newest at its own read timestamp is a snapshot violation (a
    commit at exactly that timestamp counts)."""
    records = [
        *TWO_TRANSFERS,
        read(10, "exact", 2.5, 1, 0.5),  # 2 behind, superseded at 1.0: 1.5 s
        read(11, "exact", 2.5, 2, 1.5, bound=0.25),  # 1 behind, superseded at 2.0: 0.5 s
        read(12, "exact", 3.0, 3, 2.5),  # fresh
        read(13, "exact", 2.25, 2, 2.0),  # 0.25 s, but version 3 committed at its read ts
        read(14, "exact", 3.5, 3, 3.0),  # fresh
        read(15, "exact", 2.75, 2, 1.75),  # 0.75 s
    ]
    stats = check_staleness(run(records))["exact"]
    assert stats.mode == "exact"
    assert stats.versions_behind == [2, 1, 0, 1, 0, 1]
    assert stats.seconds_behind == [1.5, 0.5, 0.0, 0.25, 0.0, 0.75]
    assert stats.k_staleness() == [2 / 6, 5 / 6, 1.0, 1.0, 1.0, 1.0]
    assert stats.to_json() == {
        "reads": 6,
        "fresh_fraction": 0.3333,
        "max_versions_behind": 2,
        "k_staleness": [0.3333, 0.8333, 1.0, 1.0, 1.0, 1.0],
        # the stale reads only (t > 0), sorted: 0.25, 0.5, 0.75, 1.5 s; the q-quantile is
        # the value of rank floor(q·n)+1, capped at n (it never under-reports)
        "stale_ms": {"p50": 750.0, "p99": 1500.0, "max": 1500.0},
        "bound_violations": [
            {"seq": 11, "account": "a", "version": 2, "behind_ms": 500.0, "bound_ms": 250.0}
        ],
        "bound_violation_count": 1,
        "snapshot_violation_count": 1,
        "snapshot_violations": [
            {"seq": 13, "account": "a", "version": 2, "newest_at_read_timestamp": 3}
        ],
        "skipped": 0,
        "served_by": {"spanner": 6},
    }


def test_a_bound_is_violated_only_beyond_bound_plus_tolerance() -> None:
    """t = 0.5 s against a 0.25 s bound: within a 0.25 s tolerance (equal counts as within),
    a violation with a smaller one; milliseconds are reported to the microsecond."""
    records = [transfer(1, 1.0, 2), read(2, "bounded", 1.5, 1, 0.5, bound=0.25)]
    assert check_staleness(run(records), tolerance=0.25)["bounded"].bound_violations == []
    (violation,) = check_staleness(run(records), tolerance=0.125)["bounded"].bound_violations
    assert violation["behind_ms"] == 500.0
    later = [transfer(1, 1.0, 2), read(2, "bounded", 1.5 + 1 / 1024, 1, 0.5, bound=0.25)]
    stats = check_staleness(run(later))["bounded"]
    assert stats.seconds_behind == [0.5 + 1 / 1024]  # 500.9765625 ms
    assert stats.bound_violations[0]["behind_ms"] == 500.977
    assert stats.to_json()["stale_ms"] == {"p50": 500.977, "p99": 500.977, "max": 500.977}


def test_reads_are_grouped_by_mode_with_who_served_them() -> None:
    """Each balance-read mode gets its own figures; only modes with reads are reported."""
    records = [
        *TWO_TRANSFERS,
        read(3, "cached", 2.5, 3, 2.25, served_by="cache"),
        read(4, "cached", 2.5, 2, 1.5, served_by="spanner"),
        read(5, "cached", 3.0, 3, 2.5, served_by="cache"),
        read(6, "strong", 3.0, 3, 3.0, bound=None, account="b"),
    ]
    result = check_staleness(run(records))
    assert sorted(result) == ["cached", "strong"]
    assert result["cached"].served_by == {"cache": 2, "spanner": 1}
    assert result["cached"].versions_behind == [0, 1, 0]
    assert result["strong"].versions_behind == [0]
    assert result["strong"].mode == "strong"


def test_reads_whose_versions_cannot_be_placed_are_skipped_and_counted() -> None:
    """A read issued before any commit, or whose read timestamp precedes every commit, or of
    an account the log does not know, cannot be measured: it is skipped, and counted; the
    reads after it still are measured."""
    records = [
        transfer(1, 1.0, 2),
        read(2, "exact", -1.0, 1, 0.5),  # issued before the account existed
        read(3, "exact", 1.5, 1, -1.0),  # read timestamp before the account existed
        read(4, "exact", 1.5, 1, 0.5, account="c"),  # no commit of c is known
        read(5, "exact", 1.5, 2, 1.25),
        read(6, "bounded", 1.5, 1, -1.0),
    ]
    result = check_staleness(run(records))
    assert (result["exact"].skipped, result["exact"].versions_behind) == (3, [0])
    assert (result["bounded"].skipped, result["bounded"].reads) == (1, 0)
    assert CommitLog([]).newest_at("c", T0) is None


def test_only_successful_balance_reads_that_carry_a_version_and_read_timestamp_count() -> None:
    """Failed reads (whatever they carry), reads without a version or without a read
    timestamp, and records that are not balance reads are neither measured nor skipped."""
    records = [
        transfer(1, 1.0, 2),
        read(2, "exact", 1.5, 1, 0.5, outcome=ERROR),
        read(3, "exact", 1.5, None, 0.5),
        read(4, "exact", 1.5, 1, None),
        read(5, "snapshot", 1.5, 1, 0.5),
        read(6, "exact", 1.5, 2, 1.25),
    ]
    result = check_staleness(run(records))
    assert list(result) == ["exact"]
    assert (result["exact"].reads, result["exact"].skipped) == (1, 0)


def test_only_committed_transfers_with_both_versions_enter_the_commit_log() -> None:
    """A transfer of unknown outcome (even one carrying a commit timestamp) or one whose
    record lacks a version tells nothing: later versions leave a gap and reads past it are
    skipped. Once resolved (:func:`resolved_view`) the unknown transfer counts."""
    unknown = transfer(1, 1.0, 2, outcome=UNKNOWN, resolved=OK)
    later = transfer(2, 2.0, 3)
    reads = [read(3, "exact", 2.5, 3, 2.25), read(4, "exact", 2.5, 3, 2.25, account="b")]
    assert check_staleness(run([unknown, later, *reads]))["exact"].skipped == 2
    resolved = run(resolved_view([unknown, later, *reads]))
    assert check_staleness(resolved)["exact"].versions_behind == [0, 0]
    for partial in ({"from_version": None}, {"to_version": None}):
        log = CommitLog([transfer(1, 1.0, 2, **partial)])
        assert log.commit_time == {}
        assert log.newest_at("b", T0 + 1.5) is None


def test_the_commit_log_knows_the_newest_version_at_each_instant() -> None:
    """Version 1 from its creation, 2 from its commit on (inclusive), nothing before."""
    log = CommitLog([*run([]).setup, transfer(1, 1.0, 2)])
    assert [log.newest_at("a", T0 + t) for t in (-0.5, 0.0, 0.5, 1.0, 9.0)] == [
        None, 1, 1, 2, 2,
    ]  # fmt: skip
    assert log.commit_time == {"a": {1: T0, 2: T0 + 1.0}, "b": {1: T0, 2: T0 + 1.0}}


def test_the_report_lists_the_first_20_violations_and_counts_them_all() -> None:
    """101 reads of version 1 issued 1/64 s, 2/64 s, … 101/64 s after version 2 committed,
    each as of a read timestamp after that commit: 101 bound and snapshot violations, 20
    listed; the quantiles of their staleness by rank (p50: rank 51, p99: rank 100)."""
    records = [transfer(0, 1.0, 2)] + [
        read(k, "bounded", 1.0 + k / 64, 1, 1.0, bound=0.0) for k in range(1, 102)
    ]
    stats = check_staleness(run(records))["bounded"]
    assert [v["seq"] for v in stats.bound_violations] == list(range(1, 102))
    assert [v["seq"] for v in stats.snapshot_violations] == list(range(1, 102))
    report = stats.to_json()
    assert report["bound_violation_count"] == report["snapshot_violation_count"] == 101
    assert report["bound_violations"] == stats.bound_violations[:20]
    assert report["snapshot_violations"] == stats.snapshot_violations[:20]
    assert report["stale_ms"] == {"p50": 796.875, "p99": 1562.5, "max": 1578.125}


def test_a_mode_without_reads_is_fresh_by_convention() -> None:
    """No reads: nothing was stale (fresh fraction 1, every k-staleness 1, quantiles 0)."""
    empty = ModeStaleness("strong")
    assert empty.k_staleness() == [1.0] * 6
    assert empty.k_staleness(2) == [1.0] * 3
    report = empty.to_json()
    assert (report["reads"], report["fresh_fraction"]) == (0, 1.0)
    assert report["stale_ms"] == {"p50": 0.0, "p99": 0.0, "max": 0.0}
    assert report["max_versions_behind"] == 0


def snapshot(seq: int, balances: dict[str, int], outcome: str = OK) -> Record:
    return Record(seq=seq, kind="snapshot", account="a", intended=seq, outcome=outcome,
                  snapshot={a: [b, 2] for a, b in balances.items()},
                  read_timestamp=T0 + seq)  # fmt: skip


def test_the_bank_check_counts_every_successful_snapshot_against_the_initial_total() -> None:
    """3 accounts × 100 = 300: a snapshot adding up to 290, or one that misses an account
    (even adding up to 300), is a violation; failed snapshots and other records are not
    snapshots."""
    records = [
        snapshot(1, {"a": 90, "b": 110, "c": 100}),
        snapshot(2, {"a": 90, "b": 100, "c": 100}),
        snapshot(3, {"a": 200, "b": 100}),
        snapshot(4, {"a": 0, "b": 0, "c": 0}, outcome=ERROR),
        transfer(5, 1.0, 2),
    ]
    result = check_bank(run(records, accounts=("a", "b", "c")))
    assert (result.expected_total, result.snapshots, result.holds) == (300, 3, False)
    assert result.to_json() == {
        "expected_total_cents": 300,
        "snapshots": 3,
        "holds": False,
        "violations": [
            {"seq": 2, "total": 290, "read_timestamp": T0 + 2},
            {"seq": 3, "total": 300, "read_timestamp": T0 + 3},
        ],
    }
    assert check_bank(run(records[:1], accounts=("a", "b", "c"))).to_json()["holds"] is True
