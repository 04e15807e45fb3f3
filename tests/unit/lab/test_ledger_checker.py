"""The ledger's strict-serializability checker: every committed history of
``tests/data/histories/ledger/`` through ``caplab check`` (exit status and anomaly classes
as each file declares), explanations in words, correct histories with concurrency and
unknown outcomes, and the real-time reduction."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from caplab.bench.checker import ledger_history
from caplab.cli import build_parser
from loadtest import check_cli
from loadtest.linearizability import LedgerVerdict, Operation, check_ledger
from loadtest.linearizability.cycles import (
    RT,
    RW,
    WR,
    WW,
    Cycle,
    Graph,
    cyclic_components,
    find_cycle,
)

CORPUS = Path(__file__).parents[2] / "data" / "histories" / "ledger"
HISTORIES = sorted(CORPUS.glob("*.json"))


def caplab_check(path: Path, *options: str) -> tuple[int, str]:
    out = io.StringIO()
    args = build_parser("check").parse_args(["check", str(path), *options])
    return check_cli.run(args, out), out.getvalue()


def test_the_corpus_covers_every_verdict_and_anomaly_class() -> None:
    """At least one committed history per exit status and per anomaly class named in the
    documentation."""
    expected = [json.loads(p.read_text())["expected"] for p in HISTORIES]
    assert {e["exit"] for e in expected} == {0, 2, 3}
    classes = {a for e in expected for a in e["anomalies"]}
    assert classes >= {
        "G0", "G1a", "G1b", "G1c-realtime", "G-single", "G-single-realtime", "G2",
        "duplicate-version", "garbage-read", "wrong-balance", "wrong-rejection", "conservation",
    }  # fmt: skip


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_caplab_check_gives_each_history_its_declared_verdict(path: Path) -> None:
    """Exit 2 with exactly the declared anomaly classes, 0 for correct histories, 3 when too
    little could be assessed."""
    expected = json.loads(path.read_text())["expected"]
    status, printed = caplab_check(path, "--json")
    result = json.loads(printed)
    assert status == expected["exit"]
    assert sorted(result["anomaly_counts"]) == sorted(expected["anomalies"])
    assert result["property"] == "strict serializability"
    assert result["holds"] is (status == 0)


def test_fractured_read_is_explained_edge_by_edge() -> None:
    """The cycle is printed with each dependency's reason in words."""
    status, text = caplab_check(CORPUS / "fractured-read.json")
    assert status == 2
    assert text.startswith("not strictly serializable: G-single-realtime")
    assert "rw: #4 (read) read b@1, and #2 (transfer) wrote the later b@2" in text
    assert "wr: #3 (read) read a@2, which #2 (transfer) wrote" in text
    assert "rt: #3 (read) returned at 3, before #4 (read) was invoked at 4" in text


def test_a_transfer_seen_on_one_account_is_known_to_have_written_the_other() -> None:
    """Issue case 2: the transfer of unknown outcome was observed on a, so it committed and
    wrote b after version 1 — which the later read of b contradicts."""
    status, text = caplab_check(CORPUS / "unknown-transfer-half-applied.json")
    assert status == 2
    assert "committed (it was observed), so it also wrote b, at a version after 1" in text


@pytest.mark.parametrize("writers", [True, False], ids=["writer ids", "inferred writers"])
def test_histories_of_a_correct_ledger_are_strictly_serializable(writers: bool) -> None:
    """Simulated correct ledgers (each operation atomic at one instant inside its interval;
    three hot accounts, many concurrent transfers, half of them of unknown outcome) never
    produce an anomaly, whether reads name their writers or the checker infers them."""
    for seed in range(15):
        history = ledger_history(
            300, accounts=3, transfers=0.4, snapshots=0.1, unknown=0.5, writers=writers, seed=seed
        )
        result = check_ledger(history)
        assert result.counts == {}, "\n".join(result.lines())
        assert result.verdict is not LedgerVerdict.NOT_STRICTLY_SERIALIZABLE


def test_removing_a_write_from_a_correct_history_is_caught() -> None:
    """Dropping one committed transfer's answer (it becomes unknown) keeps the history
    correct; turning it into a refusal makes its observed effect an aborted read."""
    history = ledger_history(400, accounts=5, unknown=0.0, seed=3)
    index = next(
        i for i, op in enumerate(history) if op.input["op"] == "transfer" and "id" in op.output
    )
    op = history[index]
    unknown = Operation(op.client, op.input, None, op.call, None)
    assert check_ledger([*history[:index], unknown, *history[index + 1 :]]).counts == {}
    refused = Operation(
        op.client, {**op.input, "id": op.output["id"]}, {"rejected": "insufficient_funds"},
        op.call, op.return_time,
    )  # fmt: skip
    result = check_ledger([*history[:index], refused, *history[index + 1 :]])
    assert "G1a" in result.counts


def test_realtime_barriers_order_exactly_the_operations_that_do_not_overlap() -> None:
    """The interval-order reduction: a reaches b through barriers iff a returned strictly
    before b was invoked, with a number of edges linear in the operations."""
    rng = random.Random(5)
    intervals = []
    for node in range(60):
        call = rng.randint(0, 40)
        returned = None if rng.random() < 0.1 else call + rng.randint(0, 8)
        intervals.append((node, float(call), None if returned is None else float(returned)))
    graph = Graph(60)
    graph.add_realtime(intervals)
    assert sum(len(edges) for edges in graph.out) <= 4 * 60
    for a, _, returned in intervals:
        reached, frontier = set(), [a]
        while frontier:
            node = frontier.pop()
            for encoded in graph.out[node]:
                if encoded >> 2 not in reached:
                    reached.add(encoded >> 2)
                    frontier.append(encoded >> 2)
        precedes = {b for b, call, _ in intervals if returned is not None and returned < call}
        assert {n for n in reached if n < 60} == precedes


def test_cycles_are_classified_as_elle_does() -> None:
    """Class by edge kinds: ww only G0; with wr G1c; one rw G-single; more G2; rt adds
    -realtime. The search prefers the class without real-time edges."""
    assert Cycle((0, 1), (WW, WW)).anomaly == "G0"
    assert Cycle((0, 1), (WW, WR)).anomaly == "G1c"
    assert Cycle((0, 1, 2), (RW, WR, RT)).anomaly == "G-single-realtime"
    assert Cycle((0, 1, 2, 3), (WR, RW, WR, RW)).anomaly == "G2"
    graph = Graph(3)
    graph.edge(0, 1, WR)
    graph.edge(1, 0, RW)
    graph.add_realtime([(1, 0.0, 1.0), (2, 2.0, 3.0), (0, 4.0, 5.0)])
    graph.edge(2, 1, RW)
    (component,) = cyclic_components(graph)
    assert find_cycle(graph, component).anomaly == "G-single"
