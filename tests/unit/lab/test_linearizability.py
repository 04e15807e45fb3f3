"""The linearizability checker on crafted histories: verdicts, counterexamples, the JSON format
and ``caplab check``."""

from __future__ import annotations

import io
import itertools
import json
import random
import time
from pathlib import Path

import pytest

from caplab.cli import build_parser, main
from loadtest import check_cli
from loadtest.linearizability import (
    KV,
    HistoryFormatError,
    Operation,
    Verdict,
    check,
    dump_history,
    parse_history,
)
from loadtest.linearizability.search import Search, search


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


def test_the_check_stops_at_the_first_key_that_is_not_linearizable() -> None:
    """Keys are checked independently (P-compositionality); the first failing key is the
    answer and the keys after it are left unchecked."""
    history = [
        write("a", 1, 0, 1), read("a", 1, 2, 3),
        write("b", 1, 0, 1), read("b", None, 2, 3),
        write("c", 1, 0, 1), read("c", 1, 2, 3),
    ]  # fmt: skip
    result = check(KV, history)
    assert {str(k.key): k.verdict for k in result.keys} == {
        "a": Verdict.LINEARIZABLE,
        "b": Verdict.NOT_LINEARIZABLE,
    }
    assert result.unchecked == 1
    assert result.exit_status == 2


def hard_key(key: str, writers: int = 24) -> list[Operation]:
    """Many mutually concurrent writes and a read of a value none of them wrote: refuting it
    means trying every subset of the writes (exponential even with the memo)."""
    history = [write(key, i, 0, 100, client=i) for i in range(writers)]
    return [*history, read(key, 999, 101, 102, client=writers)]


def test_one_hard_key_does_not_starve_the_others() -> None:
    """The budget is shared in rounds: easy keys after a hopeless one are still decided, and
    the hopeless one reports where its search stood (its longest partial linearization)."""
    easy = [op for k in "pqrs" for op in (write(k, 1, 0, 1), read(k, 1, 2, 3, client=2))]
    result = check(KV, [*hard_key("h"), *easy], timeout=0.5)
    verdicts = {str(k.key): k.verdict for k in result.keys}
    assert verdicts == {"h": Verdict.UNKNOWN, **dict.fromkeys("pqrs", Verdict.LINEARIZABLE)}
    assert result.exit_status == 3
    (hard,) = [k for k in result.keys if k.verdict is Verdict.UNKNOWN]
    assert 0 < len(hard.partial) < hard.operations
    assert "longest partial linearization" in "\n".join(result.lines())
    assert result.to_json()["partial_linearizations"]["h"]


def test_a_search_pauses_at_least_every_1024_configurations() -> None:
    """What bounds the overshoot past a deadline: a search asked to stop at an instant
    already past returns after at most 1,024 configurations, keeping its progress."""
    searching = Search(KV, hard_key("h"))
    assert searching.run(until=0.0) is None
    assert searching.configurations == 1024
    assert searching.run(until=0.0) is None
    assert searching.configurations == 2048
    assert searching.unknown().verdict is Verdict.UNKNOWN


def test_the_memo_is_bounded_and_forgetting_keeps_verdicts_right() -> None:
    """With a memo of 64 configurations the search still proves a wide history linearizable
    and a lost update not linearizable; the memo never holds more than its limit."""
    searching = Search(KV, hard_key("h", writers=16), memo_limit=64)
    for _ in range(30):
        searching.run(until=0.0)
        assert searching.memo_size <= 64
    assert check(KV, wide_cas_history(), memo_limit=64).verdict is Verdict.LINEARIZABLE
    lost = [write("x", 0, 0, 1), cas("x", 0, 1, True, 2, 5, client=1),
            cas("x", 0, 2, True, 3, 6, client=2)]  # fmt: skip
    assert check(KV, lost, memo_limit=2).verdict is Verdict.NOT_LINEARIZABLE


def test_append_concatenates_and_porcupine_style_names_are_accepted() -> None:
    """get/put/append as in Porcupine's key-value model: a never-written key reads "" and
    appends to ""; an append seen out of order is caught."""

    def append(value: str, call: float, ret: float, client: int) -> Operation:
        return op(client, {"op": "append", "key": "k", "value": value}, {}, call, ret)

    def get(value: str, call: float, ret: float) -> Operation:
        return op(9, {"op": "get", "key": "k"}, {"value": value}, call, ret)

    put = op(8, {"op": "put", "key": "k", "value": "x"}, {}, 10, 11)
    history = [get("", 0, 1), append("a", 2, 5, 1), append("b", 3, 6, 2), get("ba", 7, 8)]
    assert check(KV, history).verdict is Verdict.LINEARIZABLE
    assert check(KV, [*history, put, get("x", 12, 13)]).verdict is Verdict.LINEARIZABLE
    wrong = [append("a", 0, 1, 1), append("b", 2, 3, 2), get("ba", 4, 5)]
    assert check(KV, wrong).verdict is Verdict.NOT_LINEARIZABLE


def test_search_past_its_deadline_is_unknown() -> None:
    """A search that runs out of time says so instead of guessing."""
    history = [write("x", i, 0, 100, client=i) for i in range(14)] + [read("x", 99, 101, 102)]
    assert search(KV, history, deadline=time.monotonic()).verdict is Verdict.UNKNOWN


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
    status = check_cli.run(parser.parse_args(["check", str(path)]), out)
    text = out.getvalue()
    assert status == 2
    assert "not linearizable" in text
    assert "read x → None" in text
    assert "checked in" in text
    path.write_text(json.dumps(dump_history([write("x", 1, 0, 1), read("x", 1, 2, 3)])))
    assert main(["check", str(path), "--model", "kv"]) == 0
    assert main(["check", str(path)]) == 1  # no model in the file nor on the command line


def wide_cas_history() -> list[Operation]:
    """About fifty mutually overlapping writes and compare-and-sets with reads between them
    (the hard case for the search), as a correct register produces them."""
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
    return history


def test_wide_concurrent_cas_history_is_checked_quickly_enough_to_finish() -> None:
    """The hard case still gets a definite verdict."""
    assert check(KV, wide_cas_history(), timeout=60).verdict is Verdict.LINEARIZABLE


def test_check_draws_the_history_with_the_counterexample_highlighted(tmp_path: Path) -> None:
    """``caplab check --html`` writes one SVG panel per key, bars per client row, the
    counterexample's operations marked, the failing key first."""
    path = tmp_path / "history.json"
    history = [write("ok", 1, 0, 1), read("ok", 1, 2, 3), write("x", 1, 0, 1),
               read("x", 1, 1.5, 1.8, client=2), read("x", None, 2, 3)]  # fmt: skip
    path.write_text(json.dumps(dump_history(history, "kv")))
    page = tmp_path / "history.html"
    assert main(["check", str(path), "--html", str(page)]) == 2
    text = page.read_text()
    assert text.count("<svg") == 2
    assert text.index("key x") < text.index("key ok")  # the failing key first
    assert text.count("class='op bad'") == 2  # the write and the stale read
    assert "client 2" in text
    assert "<script" not in text


def brute_force_linearizable(history: list[Operation]) -> bool:
    """Linearizability by definition: some subset of the pending operations and some order of
    those and all completed ones, respecting real time, that the model accepts."""
    completed = [o for o in history if not o.pending]
    pending = [o for o in history if o.pending]
    for mask in range(1 << len(pending)):
        chosen = completed + [o for i, o in enumerate(pending) if mask >> i & 1]
        for order in itertools.permutations(chosen):
            if any(
                b.return_time is not None and b.return_time < a.call
                for i, a in enumerate(order)
                for b in order[i + 1 :]
            ):
                continue
            state, ok = KV.init(), True
            for o in order:
                ok, state = KV.step(state, o.input, None if o.pending else o.output)
                if not ok:
                    break
            if ok:
                return True
    return False


def test_the_search_agrees_with_the_definition_on_small_random_histories() -> None:
    """Both prunings (read-only operations taken at once, no-op pending operations skipped)
    and the memo keep verdicts exact: random histories of up to six operations, random
    answers and unknown outcomes, against brute force."""
    rng = random.Random(11)
    disagreements, failing = [], 0
    for _ in range(400):
        history = []
        for i in range(rng.randint(2, 6)):
            call = rng.uniform(0, 10)
            ret = None if rng.random() < 0.25 else call + rng.uniform(0, 4)
            kind = rng.choice(("read", "write", "cas", "append"))
            if kind == "read":
                history.append(read("k", rng.choice((None, 1, 2, "", "a")), call, ret, client=i))
            elif kind == "write":
                history.append(write("k", rng.choice((1, 2)), call, ret, client=i))
            elif kind == "cas":
                expected, new = rng.choice((None, 1, 2)), rng.choice((1, 2))
                history.append(cas("k", expected, new, rng.random() < 0.5, call, ret, client=i))
            else:
                history.append(op(i, {"op": "append", "key": "k", "value": "a"}, {}, call, ret))
        expected = brute_force_linearizable(history)
        failing += not expected
        if (check(KV, history).verdict is Verdict.LINEARIZABLE) != expected:
            disagreements.append(history)
    assert not disagreements
    assert 50 < failing < 350  # both verdicts well represented


KV_CORPUS = sorted((Path(__file__).parents[2] / "data" / "histories" / "kv").glob("*.json"))


@pytest.mark.parametrize("path", KV_CORPUS, ids=lambda p: p.stem)
def test_caplab_check_gives_each_kv_history_its_declared_verdict(path: Path) -> None:
    """The committed single-key corpus (generated register histories, hand-written
    get/put/append ones): each file's declared exit status (verdict only: no shrinking)."""
    document = json.loads(path.read_text())
    history = parse_history(document)
    assert (
        check(KV, history.operations, shrink_seconds=0).exit_status == document["expected"]["exit"]
    )
