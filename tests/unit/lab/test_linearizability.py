"""The linearizability checker on crafted histories: verdicts, counterexamples, the JSON format
and ``caplab check``."""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path

import pytest
from rich.console import Console

from caplab.cli import build_parser, main
from loadtest import check_cli
from loadtest.linearizability import (
    KV,
    LEDGER,
    HistoryFormatError,
    Operation,
    Verdict,
    check,
    dump_history,
    parse_history,
)
from loadtest.linearizability.search import search


def op(client: int, input: dict, output: dict | None, call: float, ret: float | None) -> Operation:
    return Operation(client, input, output, call, ret)


def write(key: str, value: object, call: float, ret: float | None, client: int = 0) -> Operation:
    return op(client, {"op": "write", "key": key, "value": value}, {}, call, ret)


def read(key: str, value: object, call: float, ret: float, client: int = 1) -> Operation:
    return op(client, {"op": "read", "key": key}, {"value": value}, call, ret)


def cas(
    key: str, expected: object, value: object, ok: bool, call: float, ret: float, client: int = 2
) -> Operation:
    return op(
        client,
        {"op": "cas", "key": key, "expected": expected, "value": value},
        {"ok": ok},
        call,
        ret,
    )


def test_concurrent_kv_history_is_linearizable() -> None:
    """Reads overlapping a write may see either value; a CAS that sees the write succeeds."""
    history = [
        write("x", 1, 0, 10),
        read("x", None, 1, 2, client=1),
        read("x", 1, 3, 4, client=2),
        cas("x", 1, 2, True, 11, 12, client=3),
        read("x", 2, 13, 14, client=1),
    ]
    assert check(KV, history).verdict is Verdict.LINEARIZABLE


def test_stale_read_is_caught_with_a_two_operation_counterexample() -> None:
    """A read that starts after a write returned yet misses it is not linearizable; shrinking
    keeps just the write and the stale read."""
    history = [
        write("x", 1, 0, 1),
        read("x", 1, 1.5, 1.8, client=2),
        read("y", None, 0, 5, client=3),
        read("x", None, 2, 3),
        read("x", 1, 4, 5, client=2),
    ]
    result = check(KV, history)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert result.failing_keys() == ["x"]
    (example,) = result.counterexamples
    assert [o.input["op"] for o in example.operations] == ["write", "read"]
    assert example.operations[1].output == {"value": None}
    assert example.stuck_state == 1
    assert example.minimal
    text = "\n".join(example.lines(KV))
    assert "read x → None" in text
    assert "longest linearization: write x := 1" in text


def test_non_monotonic_reads_are_caught() -> None:
    """Two sequential reads during one long write may not see new then old."""
    history = [write("x", 1, 0, 10), read("x", 1, 1, 2), read("x", None, 3, 4)]
    result = check(KV, history)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert len(result.counterexamples[0].operations) == 3


def test_two_successful_cas_from_the_same_value_are_a_lost_update() -> None:
    """Concurrent CAS 0→1 and CAS 0→2 cannot both succeed."""
    history = [
        write("x", 0, 0, 1),
        cas("x", 0, 1, True, 2, 5, client=1),
        cas("x", 0, 2, True, 3, 6, client=2),
    ]
    assert check(KV, history).verdict is Verdict.NOT_LINEARIZABLE
    history[2] = cas("x", 0, 2, False, 3, 6, client=2)
    assert check(KV, history).verdict is Verdict.LINEARIZABLE


def test_pending_write_may_or_may_not_take_effect() -> None:
    """An operation of unknown outcome may be seen, or never be seen, but not unseen."""
    pending = write("x", 1, 0, None)
    assert check(KV, [pending, read("x", None, 1, 2)]).verdict is Verdict.LINEARIZABLE
    assert check(KV, [pending, read("x", 1, 1, 2)]).verdict is Verdict.LINEARIZABLE
    flip = [pending, read("x", 1, 1, 2), read("x", None, 3, 4)]
    assert check(KV, flip).verdict is Verdict.NOT_LINEARIZABLE


def test_random_sequential_executions_are_always_linearizable() -> None:
    """Histories produced by a real atomic register (each operation takes effect at one
    instant inside its interval) are never reported as violations."""
    rng = random.Random(7)
    for _ in range(30):
        value, history = None, []
        for i in range(60):
            point = i * 1.0
            call, ret = point - rng.uniform(0, 3), point + rng.uniform(0, 3)
            kind = rng.choice(("read", "write", "cas"))
            if kind == "read":
                history.append(read("k", value, call, ret, client=i))
            elif kind == "write":
                value = rng.randint(0, 3)
                history.append(write("k", value, call, ret, client=i))
            else:
                expected, new = rng.randint(0, 3), rng.randint(0, 3)
                ok = value == expected
                value = new if ok else value
                history.append(cas("k", expected, new, ok, call, ret, client=i))
        assert check(KV, history).verdict is Verdict.LINEARIZABLE


def test_shrinking_drops_unrelated_reads_and_later_history() -> None:
    """A violation buried among many correct reads shrinks to the few operations that prove it."""
    history = [write("x", 0, 0, 1)]
    history += [read("x", 0, 2 + i, 2.5 + i, client=i % 3) for i in range(20)]
    history += [write("x", 1, 30, 31), read("x", 0, 32, 33), write("x", 2, 40, 41)]
    history += [read("x", 2, 42 + i, 42.5 + i) for i in range(20)]
    (example,) = check(KV, history).counterexamples
    assert [o.input["op"] for o in example.operations] == ["write", "write", "read"]
    assert example.operations[-1].output == {"value": 0}


def test_only_the_violating_key_is_reported() -> None:
    """Keys are checked independently (P-compositionality)."""
    history = [write("a", 1, 0, 1), read("a", None, 2, 3), write("b", 1, 0, 1), read("b", 1, 2, 3)]
    result = check(KV, history)
    assert {str(k.key): k.verdict for k in result.keys} == {
        "a": Verdict.NOT_LINEARIZABLE,
        "b": Verdict.LINEARIZABLE,
    }


def test_search_past_its_deadline_is_unknown() -> None:
    """A search that runs out of time says so instead of guessing."""
    history = [write("x", i, 0, 100, client=i) for i in range(14)] + [read("x", 99, 101, 102)]
    assert search(KV, history, deadline=time.monotonic()).verdict is Verdict.UNKNOWN


def create(account: str, balance: int, call: float, ret: float) -> Operation:
    return op(
        9, {"op": "create", "account": account, "balance": balance}, {"version": 1}, call, ret
    )


def transfer(
    source: str, target: str, amount: int, out: dict | None, call: float, ret: float | None
) -> Operation:
    return op(3, {"op": "transfer", "from": source, "to": target, "amount": amount}, out, call, ret)


def balance(account: str, cents: int, version: int, call: float, ret: float) -> Operation:
    out = {"balance": cents, "version": version}
    return op(4, {"op": "read", "account": account}, out, call, ret)


def test_ledger_transfers_and_reads_check_per_account() -> None:
    """Concurrent transfers, a rejected one, reads and a snapshot form a linearizable history."""
    history = [
        create("a", 100, 0, 1),
        create("b", 0, 0, 1),
        transfer("a", "b", 30, {"from_version": 2, "to_version": 2}, 2, 4),
        balance("a", 100, 1, 2.5, 3),
        transfer("b", "a", 50, {"rejected": "insufficient_funds"}, 5, 6),
        transfer("a", "b", 10, None, 6.5, None),
        op(
            5,
            {"op": "snapshot", "accounts": ["a", "b"]},
            {"accounts": {"a": {"balance": 70, "version": 2}, "b": {"balance": 30, "version": 2}}},
            7,
            8,
        ),
        balance("b", 40, 3, 9, 10),
    ]
    result = check(LEDGER, history)
    assert result.verdict is Verdict.LINEARIZABLE
    assert {str(k.key) for k in result.keys} == {"a", "b"}


def test_ledger_lost_update_is_caught() -> None:
    """Two transfers that both claim version 2 of the same account: one update was lost."""
    history = [
        create("a", 100, 0, 1),
        create("b", 0, 0, 1),
        create("c", 0, 0, 1),
        transfer("a", "b", 10, {"from_version": 2, "to_version": 2}, 2, 4),
        transfer("a", "c", 10, {"from_version": 2, "to_version": 2}, 2.5, 4.5),
        balance("a", 90, 2, 5, 6),
    ]
    result = check(LEDGER, history)
    assert result.failing_keys() == ["a"]
    assert "add -10 → v2" in "\n".join(result.counterexamples[0].lines(LEDGER))


def test_ledger_non_monotonic_strong_reads_are_caught() -> None:
    """Seeing version 2 and then version 1 of an account is not linearizable."""
    history = [
        create("a", 100, 0, 1),
        create("b", 0, 0, 1),
        transfer("a", "b", 10, {"from_version": 2, "to_version": 2}, 2, 10),
        balance("a", 90, 2, 3, 4),
        balance("a", 100, 1, 5, 6),
    ]
    assert check(LEDGER, history).failing_keys() == ["a"]


def test_history_json_round_trip_and_errors() -> None:
    """dump_history and parse_history agree; malformed records name what is wrong."""
    history = [write("x", 1, 0, 1), write("x", 2, 0.5, None)]
    parsed = parse_history(json.loads(json.dumps(dump_history(history, model="kv"))))
    assert parsed.model == "kv"
    assert [(o.input, o.return_time) for o in parsed.operations] == [
        (history[0].input, 1.0),
        (history[1].input, None),
    ]
    with pytest.raises(HistoryFormatError, match="operation 0: missing field 'call'"):
        parse_history([{"client": 0, "input": {}}])
    with pytest.raises(HistoryFormatError, match="returns"):
        parse_history([{"client": 0, "input": {}, "call": 2, "return": 1}])


def test_check_command_prints_verdict_and_counterexample(tmp_path: Path) -> None:
    """``caplab check`` exits 2 on a violation and prints the counterexample; 0 when fine."""
    path = tmp_path / "history.json"
    path.write_text(json.dumps(dump_history([write("x", 1, 0, 1), read("x", None, 2, 3)], "kv")))
    out = io.StringIO()
    parser = build_parser()
    status = check_cli.run(parser.parse_args(["check", str(path)]), Console(file=out, width=120))
    text = out.getvalue()
    assert status == 2
    assert "not linearizable" in text
    assert "read x → None" in text
    assert "checked in" in text
    path.write_text(json.dumps(dump_history([write("x", 1, 0, 1), read("x", 1, 2, 3)])))
    assert main(["check", str(path), "--model", "kv"]) == 0
    assert main(["check", str(path)]) == 1  # no model in the file nor on the command line


def test_wide_concurrent_cas_history_is_checked_quickly_enough_to_finish() -> None:
    """About fifty mutually overlapping writes and compare-and-sets with reads between them
    (the hard case for the search) still get a definite verdict."""
    rng = random.Random(3)
    value, history = None, []
    for i in range(200):
        point = i * 0.001
        call, ret = point - rng.uniform(0, 0.025), point + rng.uniform(0, 0.025)
        if i % 2:
            history.append(read("x", value, call, ret, client=i))
        elif i % 4:
            value = rng.randint(0, 4)
            history.append(write("x", value, call, ret, client=i))
        else:
            expected, new = rng.randint(0, 4), rng.randint(0, 4)
            ok = value == expected
            value = new if ok else value
            history.append(cas("x", expected, new, ok, call, ret, client=i))
    assert check(KV, history, timeout=60).verdict is Verdict.LINEARIZABLE
