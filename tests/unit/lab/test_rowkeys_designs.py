"""The row-key lab without Bigtable: the workload and its projection, the designs' keys and
scans (checked against the sorted key space), the hotspot the model finds, and the command's
refusals."""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from caplab.cli import main
from caplab.core import rowkey
from loadtest.rowkeys import cli, lab, measure, tablets
from loadtest.rowkeys.designs import Design, Scan, designs
from loadtest.rowkeys.workload import Side, WorkloadConfig, micros, sides

START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SMALL = WorkloadConfig(rate=50, duration=4, accounts=30, seed=7)


@pytest.fixture(scope="module")
def rows() -> list[Side]:
    return sides(SMALL, START)


def test_each_transfer_projects_two_rows_that_mirror_each_other(rows: list[Side]) -> None:
    """As the activity service projects: the debited side negative, the credited positive,
    both at the commit time, each naming the other account."""
    by_transfer: dict[str, list[Side]] = {}
    for side in rows:
        by_transfer.setdefault(side.transfer_id, []).append(side)
    assert len(by_transfer) * 2 == len(rows)
    for debit, credit in by_transfer.values():
        assert debit.amount_cents == -credit.amount_cents < 0
        assert (debit.account, debit.counterparty) == (credit.counterparty, credit.account)
        assert (
            debit.committed_at
            == credit.committed_at
            == START + timedelta(microseconds=round(debit.at * 1e6))
        )


def test_the_workload_is_seeded_and_zipf_skewed(rows: list[Side]) -> None:
    assert sides(SMALL, START) == rows
    assert sides(WorkloadConfig(rate=50, duration=4, accounts=30, seed=8), START) != rows
    counts = Counter(side.account for side in rows)
    assert counts.most_common(1)[0][0] == "acct-0000"
    uniform = Counter(s.account for s in sides(WorkloadConfig(rate=50, duration=4, zipf=0), START))
    assert max(uniform.values()) < counts["acct-0000"]


def test_the_in_use_design_is_the_activity_services_key(rows: list[Side]) -> None:
    (in_use,) = [d for d in designs() if d.in_use]
    side = rows[0]
    assert in_use.key(side) == rowkey.row_key(side.account, side.committed_at, side.transfer_id)


@pytest.mark.parametrize("design", designs(), ids=lambda d: d.name)
def test_every_key_is_unique(design: Design, rows: list[Side]) -> None:
    assert len({design.key(side) for side in rows}) == len(rows)


def _rows_in(scan: Scan, ordered: list[tuple[bytes, Side]]) -> list[Side]:
    """What ReadRows returns for ``scan`` over the sorted rows (ranges in order, limit)."""
    keys = [key for key, _ in ordered]
    found = []
    for start, end in scan.ranges:
        low = 0 if start is None else bisect.bisect_left(keys, start)
        high = len(keys) if end is None else bisect.bisect_left(keys, end)
        found += [side for _, side in ordered[low:high]]
    return found[: scan.limit] if scan.limit else found


@pytest.mark.parametrize("design", designs(), ids=lambda d: d.name)
def test_every_design_scan_holds_the_answer(design: Design, rows: list[Side]) -> None:
    """Over the sorted key space, each design's feed scan yields the account's newest page
    (in key order for a limited scan) and its time-range scan every row of the interval."""
    ordered = sorted(((design.key(side), side) for side in rows), key=lambda pair: pair[0])
    queries = measure.sample_queries(rows, START, 5, 20, 1.0, SMALL.duration, seed=3)
    for account in queries.feed_accounts:
        scan = design.feed(account, 20)
        found = [s for s in _rows_in(scan, ordered) if s.account == account]
        expected = measure.expected_feed(rows, account, 20)
        if scan.limit:
            assert [s.identity for s in found] == expected
        assert [s.identity for s in measure.newest_first(found)[:20]] == expected
    for start, end in queries.ranges:
        found = {s.identity for s in _rows_in(design.time_range(start, end), ordered)}
        assert measure.expected_range(rows, start, end) <= found


def test_only_the_salted_timestamp_needs_one_range_per_salt() -> None:
    by_name = {d.name: d for d in designs(salt_buckets=8)}
    assert len(by_name["salted_timestamp"].time_range(START, START).ranges) == 8
    assert by_name["timestamp_first"].time_range(START, START).ranges == (
        (str(micros(START)).zfill(19).encode(),) * 2,
    )
    assert by_name["transfer_first"].feed("acct-0001", 20).is_full_table


def test_timestamp_first_is_a_hotspot_and_the_activity_design_is_not() -> None:
    """The model on the default workload: one tablet takes every window's writes under a
    timestamp-first key, and no cluster size absorbs the target rate; the activity key
    spreads them."""
    rows = sides(WorkloadConfig(), START)
    config = lab.LabConfig()
    by_name = {d.name: d for d in designs()}
    shares = {}
    for name in ("timestamp_first", "account_reverse_time"):
        writes = lab.row_writes(by_name[name], rows)
        shares[name] = tablets.replay(writes, 10.0, config.model).max_tablet_write_share
    assert shares["timestamp_first"] > 0.5
    assert shares["account_reverse_time"] < 0.5
    rate, per_node = config.target_rate, config.node_write_rate
    assert tablets.nodes_needed(shares["timestamp_first"], rate, per_node) is None
    assert tablets.nodes_needed(shares["account_reverse_time"], rate, per_node) is not None


def test_a_transfer_id_keeps_same_microsecond_commits_apart() -> None:
    """Two transfers of one account committed in the same microsecond get two rows under
    every design."""
    first = Side(0.0, "acct-0001", "acct-0002", -5, START, "a" * 32)
    second = Side(0.0, "acct-0001", "acct-0003", -7, START, "b" * 32)
    for design in designs():
        assert design.key(first) != design.key(second), design.name


def test_salting_approaches_one_over_the_salts_as_windows_fill() -> None:
    """Eight salts: the busiest tablet's share falls toward 1/8 as each window holds more
    writes (the excess at the default rate is sampling noise)."""
    salted = next(d for d in designs() if d.name == "salted_timestamp")
    model = lab.LabConfig().model
    shares = []
    for rate in (100, 400):
        rows = sides(WorkloadConfig(rate=rate), START)
        replay = tablets.replay(lab.row_writes(salted, rows), 10.0, model)
        shares.append(replay.max_tablet_write_share)
    assert 1 / 8 < shares[1] < shares[0]


@pytest.mark.parametrize("name", ["account_reverse_time", "account_time", "hashed_account"])
def test_the_busiest_account_is_the_floor_of_an_account_first_key(name: str) -> None:
    """All of one account's new rows sort next to each other (newest at the head, or at
    the tail), so no split separates them: in every window the busiest tablet takes at least
    the busiest account's share."""
    config = WorkloadConfig(duration=6)
    rows = sides(config, START)
    model = tablets.ModelConfig()
    design = next(d for d in designs() if d.name == name)
    replay = tablets.replay(lab.row_writes(design, rows), config.duration, model)
    for index, share in enumerate(replay.shares):
        window = [r for r in rows if int(r.at // model.window) == index]
        busiest = Counter(r.account for r in window).most_common(1)[0][1]
        assert share >= busiest / len(window)


def test_the_target_is_the_emulator_or_an_explicit_instance_never_a_default() -> None:
    emulator = {"BIGTABLE_EMULATOR_HOST": "127.0.0.1:1"}
    assert cli.target_from(None, None, emulator).tablet_mode == lab.MODEL
    real = cli.target_from("p", "i", {})
    assert real.tablet_mode == lab.SAMPLE_ROW_KEYS
    assert (real.settings.project, real.settings.bigtable_instance) == ("p", "i")
    with pytest.raises(cli.RowkeysError, match="BIGTABLE_EMULATOR_HOST is not set"):
        cli.target_from(None, None, {})
    with pytest.raises(cli.RowkeysError, match="both --project and --instance"):
        cli.target_from("p", None, {})
    with pytest.raises(cli.RowkeysError, match="unset it"):
        cli.target_from("p", "i", emulator)


def test_a_workload_without_transfers_is_refused_before_any_table() -> None:
    empty = lab.LabConfig(
        workload=WorkloadConfig(rate=0.1, duration=1, arrivals="constant", seed=1),
        model=tablets.ModelConfig(warmup=0),
    )
    nowhere = cli.target_from(None, None, {"BIGTABLE_EMULATOR_HOST": "127.0.0.1:1"})
    with pytest.raises(lab.RowkeysError, match="no transfers"):
        lab.run(empty, nowhere, Console(quiet=True))


def test_the_command_without_an_emulator_explains_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rowkeys"]) == 1
    assert "caplab emulators env" in capsys.readouterr().err


def test_bad_values_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rowkeys", "--window", "fast"])
    assert "'fast' is not a duration" in capsys.readouterr().err
    assert main(["rowkeys", "--accounts", "1"]) == 1
    assert "at least 2 accounts" in capsys.readouterr().err
    assert main(["rowkeys", "--duration", "2s", "--warmup", "2s"]) == 1
    assert "warm-up must be shorter" in capsys.readouterr().err
