"""Histories from several clocks: each worker's intervals move to the reference clock and widen
by its declared uncertainty. A skew inside the uncertainty never turns a legal history into a
violation (kv and ledger models); a skew beyond it can; anomalies split across workers are
still caught when the order they need is longer than the uncertainty."""

from __future__ import annotations

import random

import pytest

from caplab.core.errors import CaplabError
from loadtest.clock import Clock, kernel_clock, merge_histories, on_reference
from loadtest.linearizability import KV, LEDGER, Operation, Verdict, check


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


def ledger_history(seed: int, operations: int = 150) -> list[Operation]:
    """A legal ledger history over three accounts: creations, transfers (some refused) and
    strong reads, each effective at one instant inside its interval."""
    rng = random.Random(seed)
    state = {a: [100, 1] for a in ("a", "b", "c")}
    history = [
        Operation(f"create-{a}", {"op": "create", "account": a, "balance": 100}, {"version": 1},
                  -2.0, -1.0)
        for a in state
    ]  # fmt: skip
    for i in range(operations):
        at = i * 0.003
        call, ret = at - rng.uniform(0, 0.004), at + rng.uniform(0, 0.004)
        if rng.random() < 0.35:
            source, target = rng.sample(sorted(state), 2)
            amount = rng.randint(1, 60)
            if state[source][0] >= amount:
                state[source][0] -= amount
                state[target][0] += amount
                state[source][1] += 1
                state[target][1] += 1
                output = {"from_version": state[source][1], "to_version": state[target][1]}
            else:
                output = {"rejected": "insufficient_funds"}
            op = {"op": "transfer", "from": source, "to": target, "amount": amount}
            history.append(Operation(i, op, output, call, ret))
        else:
            account = rng.choice(sorted(state))
            output = {"balance": state[account][0], "version": state[account][1]}
            history.append(Operation(i, {"op": "read", "account": account}, output, call, ret))
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
@pytest.mark.parametrize(
    ("model", "make"), [(KV, register_history), (LEDGER, ledger_history)], ids=["kv", "ledger"]
)
def test_skew_inside_the_declared_uncertainty_never_fails_a_legal_history(
    seed: int, model: object, make: object
) -> None:
    """Three workers, each with a clock off by up to ±10 ms (including exactly ±10 ms) and a
    declared uncertainty of 10 ms: the merged history is still linearizable."""
    history = make(seed)  # type: ignore[operator]
    assert check(model, history).verdict is Verdict.LINEARIZABLE  # type: ignore[arg-type]
    rng = random.Random(seed)
    skews = [UNCERTAINTY, -UNCERTAINTY, rng.uniform(-UNCERTAINTY, UNCERTAINTY)]
    parts = [
        (skewed(ops, skew), Clock(0.0, UNCERTAINTY, "declared"))
        for ops, skew in zip(split(history, 3, seed), skews, strict=True)
    ]
    merged = merge_histories(parts)
    assert len(merged) == len(history)
    assert check(model, merged).verdict is Verdict.LINEARIZABLE  # type: ignore[arg-type]


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


def ledger_anomalies() -> dict[str, list[list[Operation]]]:
    create = [
        Operation("c", {"op": "create", "account": a, "balance": 100}, {"version": 1}, 0.0, 0.001)
        for a in ("a", "b")
    ]
    move = {"op": "transfer", "from": "a", "to": "b", "amount": 10}
    return {
        # two transfers from the same version: a lost update
        "lost update": [
            [*create, Operation(1, move, {"from_version": 2, "to_version": 2}, 0.010, 0.011)],
            [Operation(2, move, {"from_version": 2, "to_version": 3}, 0.100, 0.101)],
        ],
        # a strong read, long after a committed transfer, sees the old balance
        "stale strong read": [
            [*create, Operation(1, move, {"from_version": 2, "to_version": 2}, 0.010, 0.011)],
            [Operation(2, {"op": "read", "account": "a"}, {"balance": 100, "version": 1},
                       0.200, 0.201)],
        ],
        # a strong read sees money that no operation put there
        "garbage read": [
            create,
            [Operation(2, {"op": "read", "account": "a"}, {"balance": 170, "version": 2},
                       0.050, 0.051)],
        ],
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(ledger_anomalies()))
def test_ledger_anomalies_split_across_workers_stay_caught(name: str) -> None:
    """Each anomaly, its operations on two workers with clocks off by 3 ms either way and
    declared ±5 ms, is as not-linearizable as in one piece."""
    parts = ledger_anomalies()[name]
    whole = merge_histories([(ops, Clock()) for ops in parts])
    assert check(LEDGER, whole).verdict is Verdict.NOT_LINEARIZABLE
    declared = Clock(0.0, 0.005, "declared")
    merged = merge_histories(
        [(skewed(parts[0], 0.003), declared), (skewed(parts[1], -0.003), declared)]
    )
    assert check(LEDGER, merged).verdict is Verdict.NOT_LINEARIZABLE


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
