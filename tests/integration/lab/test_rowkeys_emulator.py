"""The row-key lab against the Bigtable emulator on a tiny workload: every design answers every
query correctly, the rows each design reads are the ones its key allows, the lab's tables are
removed (or kept on request), and ``caplab rowkeys`` writes its report."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from caplab.cli import main
from caplab.core.clients import ClientFactory
from caplab.core.environment import GcpSettings, config_from
from emulators import manager
from loadtest.rowkeys import cli, lab, measure
from loadtest.rowkeys.designs import designs
from loadtest.rowkeys.tablets import ModelConfig
from loadtest.rowkeys.workload import WorkloadConfig, sides

TINY = lab.LabConfig(
    workload=WorkloadConfig(rate=40, duration=3, accounts=30, seed=5),
    model=ModelConfig(warmup=1.0),
    queries=3,
    page=5,
)


def _lab_tables(environ: dict[str, str], run_id: str) -> list[str]:
    clients = ClientFactory(GcpSettings.from_config(config_from(environ)))
    instance = clients.bigtable_admin.instance(clients.settings.bigtable_instance)
    prefix = measure.table_id(run_id, "")
    return [t.table_id for t in instance.list_tables() if t.table_id.startswith(prefix)]


@pytest.fixture(scope="module")
def result(stack: manager.StackConfig) -> lab.LabResult:
    environ = manager.client_environment(stack)
    with manager.exported(environ):
        return lab.run(TINY, cli.target_from(None, None, environ), Console(quiet=True))


def test_every_design_answers_every_query_correctly(result: lab.LabResult) -> None:
    assert [d.design.name for d in result.designs] == [d.name for d in designs()]
    for d in result.designs:
        assert {k: q.wrong for k, q in d.queries.items()} == {
            "feed": 0, "time_range": 0, "point": 0
        }, d.design.name  # fmt: skip
        assert all(len(q.rows_read) == TINY.queries for q in d.queries.values())


def test_rows_read_follow_from_each_key(result: lab.LabResult) -> None:
    """Prefix-and-limit designs read exactly the page; the forward-time design reads the
    account's whole range; designs without the account (or time) in front read the table;
    a timestamp-first key reads exactly the interval; a point lookup reads one row."""
    by_name = {d.design.name: d for d in result.designs}
    for name in ("account_reverse_time", "hashed_account"):
        feed = by_name[name].queries["feed"]
        assert feed.rows_read == feed.rows_useful
        assert feed.rows_read_per_useful_row == 1.0
    forward = by_name["account_time"].queries["feed"]
    assert forward.rows_read_per_useful_row > 1.0
    for name in ("timestamp_first", "salted_timestamp", "transfer_first"):
        assert by_name[name].queries["feed"].rows_read == [result.rows] * TINY.queries
    for name in ("account_reverse_time", "account_time", "hashed_account", "transfer_first"):
        assert by_name[name].queries["time_range"].rows_read == [result.rows] * TINY.queries
    for name in ("timestamp_first", "salted_timestamp"):
        window = by_name[name].queries["time_range"]
        assert window.rows_read == window.rows_useful
    assert by_name["salted_timestamp"].queries["time_range"].ranges == TINY.salt_buckets
    for d in result.designs:
        assert d.queries["point"].rows_read == [1] * TINY.queries


def test_the_forward_time_feed_reads_the_accounts_whole_range(result: lab.LabResult) -> None:
    rows = sides(TINY.workload, result.started)
    per_account = Counter(side.account for side in rows)
    queries = measure.sample_queries(
        rows, result.started, TINY.queries, TINY.page, TINY.range_seconds, 3, seed=5
    )
    forward = next(d for d in result.designs if d.design.name == "account_time")
    assert forward.queries["feed"].rows_read == [per_account[a] for a in queries.feed_accounts]


def test_the_lab_removes_its_tables(result: lab.LabResult, emulator_env: dict[str, str]) -> None:
    assert _lab_tables(emulator_env, result.run_id) == []


def test_keep_leaves_the_tables(emulator_env: dict[str, str]) -> None:
    config = lab.LabConfig(
        workload=WorkloadConfig(rate=10, duration=1, accounts=5), model=ModelConfig(warmup=0),
        queries=1,
    )  # fmt: skip
    kept = lab.run(config, cli.target_from(None, None, emulator_env), Console(quiet=True), True)
    names = _lab_tables(emulator_env, kept.run_id)
    try:
        assert sorted(names) == sorted(measure.table_id(kept.run_id, d.name) for d in designs())
    finally:
        clients = ClientFactory(GcpSettings.from_config(config_from(emulator_env)))
        instance = clients.bigtable_admin.instance(clients.settings.bigtable_instance)
        for name in names:
            instance.table(name).delete()


def test_the_command_prints_and_writes_the_report(
    emulator_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--rate", "20", "--duration", "2s", "--accounts", "10", "--queries", "2"]
    assert main(["rowkeys", *arguments, "--warmup", "500ms", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "account_reverse_time (in use)" in printed
    assert "modelled" in printed
    report = json.loads((tmp_path / "rowkeys.json").read_text())
    assert report["tablet_mode"] == "model"
    design = report["designs"][0]
    for field in ("name", "key_example", "in_use", "max_tablet_write_share", "nodes_needed",
                  "rows_read_per_feed_query", "rows_read_per_time_range_query"):  # fmt: skip
        assert field in design
    assert [d["name"] for d in report["designs"] if d["in_use"]] == ["account_reverse_time"]
    partitioning = report["partitioning"]
    assert (partitioning["nodes_before"], partitioning["nodes_after"]) == (4, 5)
    assert set(partitioning["mod_n"]) == {"moved_fraction", "max_over_mean"}
    assert set(partitioning["consistent_hashing"]) == {
        "virtual_nodes", "moved_fraction", "max_over_mean"
    }  # fmt: skip
    page = (tmp_path / "rowkeys.html").read_text()
    assert page.count("<svg") == 2


def test_the_emulator_samples_row_keys_at_random(emulator_env: dict[str, str]) -> None:
    """Why tablets are modelled locally: the emulator's SampleRowKeys answers a different
    sample of keys on each call, not tablet boundaries."""
    clients = ClientFactory(GcpSettings.from_config(config_from(emulator_env)))
    instance = clients.bigtable_admin.instance(clients.settings.bigtable_instance)
    table = measure.create_table(instance, measure.table_id("samples", "test"))
    try:
        rows = [table.direct_row(f"k{i:05d}".encode()) for i in range(2_000)]
        for row in rows:
            row.set_cell(measure.FAMILY, b"c", b"x" * 50)
        assert all(status.code == 0 for status in table.mutate_rows(rows))
        samples = {tuple(measure.sample_row_keys(table)) for _ in range(3)}
        assert len(samples) > 1
    finally:
        table.delete()
