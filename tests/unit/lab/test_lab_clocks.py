"""Histories from several clocks: each worker's intervals move to the reference clock and widen
by its declared uncertainty. A skew inside the uncertainty never turns a legal history into a
violation (kv histories, and every legal history of the committed ledger corpus); a skew beyond
it can; the corpus' anomaly histories split across workers are still caught when the order
they need is longer than the uncertainty."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from caplab.core.errors import CaplabError
from loadtest.clock import Clock, kernel_clock, merge_histories, on_reference
from loadtest.linearizability import KV, Operation, Verdict, check, check_ledger, load_history


def register_history(seed: int, operations: int = 120, clients: int = 6) -> list[Operation]:
    """A linearizable single-register history: each operation takes effect at one instant
    inside its interval; each client issues one operation at a time."""
    rng = random.Random(seed)
    value: int | None = None
    free_at = [-1.0] * clients
    history = []
    at = 0.0
    for _ in range(operations):
        at += rng.uniform(0.0005, 0.002)  # effects in generation order
        client = rng.choice([c for c in range(clients) if free_at[c] < at] or [0])
        call = max(free_at[client], at - rng.uniform(0, 0.004))
        ret = at + rng.uniform(0, 0.004)
        free_at[client] = ret
        if rng.random() < 0.4:
            value = rng.randint(0, 5)
            write = {"op": "write", "key": "x", "value": value}
            history.append(Operation(client, write, {}, call, ret))
        else:
            read = {"op": "read", "key": "x"}
            history.append(Operation(client, read, {"value": value}, call, ret))
    return history


def split(history: list[Operation], workers: int, seed: int) -> list[list[Operation]]:
    """Deal the operations to workers (each operation to one worker, at random)."""
    rng = random.Random(seed)
    parts: list[list[Operation]] = [[] for _ in range(workers)]
    for op in history:
        parts[rng.randrange(workers)].append(op)
    return parts


def skewed(ops: list[Operation], skew: float) -> list[Operation]:
    """What a worker whose clock is ``skew`` ahead of the reference would have recorded."""
    return [
        Operation(op.client, op.input, op.output, op.call + skew,
                  None if op.return_time is None else op.return_time + skew)
        for op in ops
    ]  # fmt: skip


UNCERTAINTY = 0.010


@pytest.mark.parametrize("seed", range(6))
def test_skew_inside_the_declared_uncertainty_never_fails_a_legal_kv_history(seed: int) -> None:
    """Three workers, each with a clock off by up to ±10 ms (including exactly ±10 ms) and a
    declared uncertainty of 10 ms: the merged register history is still linearizable."""
    history = register_history(seed)
    assert check(KV, history).verdict is Verdict.LINEARIZABLE
    rng = random.Random(seed)
    skews = [UNCERTAINTY, -UNCERTAINTY, rng.uniform(-UNCERTAINTY, UNCERTAINTY)]
    parts = [
        (skewed(ops, skew), Clock(0.0, UNCERTAINTY, "declared"))
        for ops, skew in zip(split(history, 3, seed), skews, strict=True)
    ]
    merged = merge_histories(parts)
    assert len(merged) == len(history)
    assert check(KV, merged).verdict is Verdict.LINEARIZABLE


LEDGER_CORPUS = sorted((Path(__file__).parents[2] / "data" / "histories" / "ledger").glob("*.json"))
CORPUS_UNCERTAINTY = 0.1
"""Seconds: the hand-written histories keep at least 0.5 s between operations they order."""


def by_client(history: list[Operation]) -> list[list[Operation]]:
    """Two workers: the creations and every other client on worker 0, the rest on worker 1
    (a client's operations stay on one worker, as in the lab)."""
    clients = sorted({str(op.client) for op in history if op.input["op"] != "create"})
    second = set(clients[1::2])
    parts: list[list[Operation]] = [[], []]
    for op in history:
        parts[str(op.client) in second].append(op)
    return parts


@pytest.mark.parametrize("path", LEDGER_CORPUS, ids=lambda p: p.stem)
def test_the_ledger_corpus_keeps_its_verdict_split_across_skewed_workers(path: Path) -> None:
    """Every committed ledger history (legal ones, each anomaly class, inconclusive ones),
    split over two workers whose clocks are 0.1 s off in opposite directions and declared
    ±0.1 s: the merged history gets the verdict and anomaly classes of the original. Legal
    histories are never failed; anomalies stay caught."""
    history = list(load_history(path).operations)
    expected = check_ledger(history)
    declared = Clock(0.0, CORPUS_UNCERTAINTY, "declared")
    first, second = by_client(history)
    merged = merge_histories(
        [
            (skewed(first, CORPUS_UNCERTAINTY), declared),
            (skewed(second, -CORPUS_UNCERTAINTY), declared),
        ]
    )
    result = check_ledger(merged)
    assert result.verdict is expected.verdict
    assert set(result.counts) == set(expected.counts)


def write_then_read(gap: float) -> list[list[Operation]]:
    """Worker 0 writes 0, then 50 ms later 1, and is done; ``gap`` s later worker 1 reads 1:
    legal. (Widening applies inside one worker too: its two writes stay ordered only because
    they are further apart than twice any uncertainty used here.)"""
    writer = [
        Operation(0, {"op": "write", "key": "x", "value": 0}, {}, 0.000, 0.001),
        Operation(0, {"op": "write", "key": "x", "value": 1}, {}, 0.050, 0.051),
    ]
    reader = [Operation(1, {"op": "read", "key": "x"}, {"value": 1}, 0.051 + gap, 0.052 + gap)]
    return [writer, reader]


def test_a_skew_beyond_the_declared_uncertainty_can_fail_a_legal_history() -> None:
    """The teeth of the test above: the reader's clock 20 ms behind, declared ±5 ms, makes
    its read of the new value look like it finished before the write began."""
    writer, reader = write_then_read(gap=0.005)
    legal = merge_histories([(writer, Clock()), (reader, Clock())])
    assert check(KV, legal).verdict is Verdict.LINEARIZABLE
    declared = Clock(0.0, 0.005, "declared")
    wrong = merge_histories([(writer, declared), (skewed(reader, -0.020), declared)])
    assert check(KV, wrong).verdict is Verdict.NOT_LINEARIZABLE
    honest = Clock(0.0, 0.020, "declared")
    assert (
        check(KV, merge_histories([(writer, honest), (skewed(reader, -0.020), honest)])).verdict
        is Verdict.LINEARIZABLE
    )


def stale_read(gap: float) -> list[list[Operation]]:
    """Worker 0 writes 1 over 0 and is done; ``gap`` s later worker 1 still reads 0."""
    writer, reader = write_then_read(gap)
    return [
        writer,
        [Operation(1, reader[0].input, {"value": 0}, reader[0].call, reader[0].return_time)],
    ]


def test_a_stale_read_split_across_workers_is_caught_when_the_gap_exceeds_the_uncertainty() -> None:
    """Worker 1 reads the old value 50 ms after worker 0's write returned: caught with ±5 ms
    clocks; with a 1 ms gap the order is not certain under ±5 ms, so it is (rightly) not
    asserted."""
    declared = Clock(0.0, 0.005, "declared")
    caught = merge_histories([(ops, declared) for ops in stale_read(gap=0.050)])
    assert check(KV, caught).verdict is Verdict.NOT_LINEARIZABLE
    uncertain = merge_histories([(ops, declared) for ops in stale_read(gap=0.001)])
    assert check(KV, uncertain).verdict is Verdict.LINEARIZABLE


def test_on_reference_shifts_by_the_offset_widens_by_the_uncertainty_and_names_the_worker() -> None:
    ops = [
        Operation(7, {"op": "read", "key": "x"}, {"value": None}, 10.0, 11.0),
        Operation(8, {"op": "write", "key": "x", "value": 1}, None, 12.0, None),
    ]
    moved = on_reference(ops, Clock(offset=2.0, uncertainty=0.5), worker=3)
    assert [(op.client, op.call, op.return_time) for op in moved] == [
        ("w3:7", 7.5, 9.5),
        ("w3:8", 9.5, None),
    ]
    with pytest.raises(ValueError, match="uncertainty"):
        Clock(0.0, -1.0)


def test_kernel_clock_reports_the_ntp_bound_or_refuses_an_unsynchronised_clock() -> None:
    """adjtimex(2) is read on this machine: either a bound (source kernel, non-negative) or a
    refusal that names the reason."""
    try:
        clock = kernel_clock()
    except CaplabError as error:
        refusal = str(error)
        assert "not synchronised" in refusal
    else:
        assert clock.source == "kernel"
        assert clock.offset == 0.0
        assert clock.uncertainty >= 0.0
