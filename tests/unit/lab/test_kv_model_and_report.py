"""The kv model's step by step answers and descriptions, and what ``check`` reports: the
counterexample's explanation, the JSON document, undecided keys."""

from __future__ import annotations

from dataclasses import replace

import pytest

from loadtest.linearizability import KV, Operation, Verdict, check
from loadtest.linearizability.check import CheckResult, Counterexample, KeyResult, shrink
from loadtest.linearizability.search import Search, SearchResult


def kv(op: str, **fields: object) -> dict[str, object]:
    return {"op": op, "key": "x", **fields}


@pytest.mark.parametrize(
    ("state", "input", "output", "expected"),
    [
        (None, kv("read"), {"value": None}, (True, None)),
        (None, kv("read"), {"value": ""}, (True, None)),  # Porcupine's "" for a missing key
        (None, kv("get"), {"value": 1}, (False, None)),
        (1, kv("read"), {"value": 1}, (True, 1)),
        (1, kv("read"), {"value": ""}, (False, 1)),  # "" stands for missing, not for 1
        ("", kv("get"), {"value": ""}, (True, "")),
        (1, kv("read"), None, (True, 1)),  # unknown outcome: any state fits
        (1, kv("write", value=2), {}, (True, 2)),
        (1, kv("put", value=3), None, (True, 3)),
        (None, kv("append", value="a"), {}, (True, "a")),
        (7, kv("append", value="a"), {}, (True, "7a")),
        (1, kv("cas", expected=1, value=2), {"ok": True}, (True, 2)),
        (1, kv("cas", expected=1, value=2), {"ok": False}, (False, 2)),
        (1, kv("cas", expected=0, value=2), {"ok": False}, (True, 1)),
        (1, kv("cas", expected=0, value=2), {"ok": True}, (False, 1)),
        (1, kv("cas", expected=0, value=2), {}, (True, 1)),  # no "ok": it failed
        (1, kv("cas", expected=1, value=2), None, (True, 2)),  # unknown: it would swap
    ],
)
def test_each_operation_is_judged_against_the_register_state(
    state: object, input: dict, output: dict | None, expected: tuple[bool, object]
) -> None:
    """``step(state, input, output)``: whether the answer is right in that state, and the
    state after the operation."""
    assert KV.step(state, input, output) == expected


def test_an_unknown_operation_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="kv model: unknown operation 'delete'"):
        KV.step(None, kv("delete"), {})


@pytest.mark.parametrize(
    ("input", "output", "read_only"),
    [
        (kv("read"), {"value": 1}, True),
        (kv("get"), None, True),
        (kv("cas", expected=1, value=2), {"ok": False}, True),
        (kv("cas", expected=1, value=2), {"ok": True}, False),
        (kv("cas", expected=1, value=2), None, False),  # may have swapped
        (kv("cas", expected=1, value=2), {}, False),  # not known to have failed
        (kv("write", value=1), {}, False),
        (kv("put", value=1), {}, False),
        (kv("append", value="a"), {}, False),
    ],
)
def test_reads_and_known_failed_cas_are_read_only(input: dict, output: object, read_only: bool):
    """Only those never change the state, whatever it is."""
    assert KV.read_only(input, output) is read_only


@pytest.mark.parametrize(
    ("input", "output", "text"),
    [
        (kv("read"), {"value": 1}, "read x → 1"),
        (kv("get"), {"value": "a"}, "read x → 'a'"),
        (kv("read"), None, "read x → ?"),
        (kv("write", value=1), {}, "write x := 1"),
        (kv("put", value="v"), {}, "write x := 'v'"),
        (kv("append", value="a"), {}, "append x += 'a'"),
        (kv("cas", expected=1, value="b"), {"ok": True}, "cas x 1→'b' → ok"),
        (kv("cas", expected=None, value=2), {"ok": False}, "cas x None→2 → failed"),
        (kv("cas", expected=1, value=2), None, "cas x 1→2 → ?"),
    ],
)
def test_operations_are_described_for_people(input: dict, output: object, text: str) -> None:
    assert KV.describe_operation(input, output) == text


def test_states_are_described_by_value_and_keys_partition_the_history() -> None:
    assert KV.describe_state("ab") == "value='ab'"
    assert KV.init() is None
    op = Operation(0, kv("read"), {"value": 1}, 0.0, 1.0)
    assert list(KV.partition(op)) == [("x", op)]


def at(client: int, input: dict, output: object, call: float, ret: float | None) -> Operation:
    """An operation 10 s after the clock's zero: the explanation counts from the first call."""
    return Operation(client, input, output, 10 + call, None if ret is None else 10 + ret)


STALE = [
    at(0, kv("write", value=1), {}, 0.0, 1.0),
    at(1, kv("read"), {"value": None}, 2.0, 3.0),
    at(2, kv("write", value=2), None, 0.5, None),
]
"""A read that misses a completed write, with a write of unknown outcome alongside."""

EXPLANATION = [
    "key 'x': 3 operations cannot be linearized",
    "  client      0     [0.000000, 1.000000]  write x := 1",
    "  client      2            [0.500000, …]  write x := 2",
    "  client      1     [2.000000, 3.000000]  read x → None",
    "  longest linearization: write x := 1 ; write x := 2",
    "  then the state is value=2, and none of",
    "    read x → None",
    "  can take effect next while respecting real time.",
]


def test_a_counterexample_explains_itself_in_operations_times_and_the_stuck_state() -> None:
    """Operations by call time with times from the first call (… for unknown returns), the
    longest linearization, the state after it, the operations that cannot come next."""
    result = check(KV, STALE)
    (example,) = result.counterexamples
    assert example.minimal
    assert example.lines(KV) == EXPLANATION
    assert result.lines() == ["not linearizable: key x", *EXPLANATION]
    assert example.to_json(KV) == {
        "key": "x",
        "operations": [STALE[0].to_json(), STALE[2].to_json(), STALE[1].to_json()],
        "longest_linearization": [STALE[0].to_json(), STALE[2].to_json()],
        "stuck_state": "value=2",
        "explanation": EXPLANATION,
        "minimal": True,
    }


def test_an_unshrunk_counterexample_says_so() -> None:
    """No shrinking time: the failing key's whole history, marked as not minimal."""
    (example,) = check(KV, STALE, shrink_seconds=0).counterexamples
    assert not example.minimal
    assert example.lines(KV)[0] == (
        "key 'x': 3 operations cannot be linearized (shrinking stopped at its time budget)"
    )
    assert example.to_json(KV)["minimal"] is False


def test_the_check_document_names_the_verdict_keys_and_counterexamples() -> None:
    result = check(KV, [*STALE, at(3, {"op": "read", "key": "y"}, {"value": None}, 0, 1)])
    document = result.to_json()
    assert document.pop("seconds") == round(result.seconds, 6)
    assert document == {
        "model": "kv",
        "property": "linearizability",
        "verdict": "not linearizable",
        "operations": 4,
        "keys": {"x": "not linearizable"},
        "unchecked_keys": 1,
        "counterexamples": [result.counterexamples[0].to_json(KV)],
        "partial_linearizations": {},
    }
    assert result.headline() == "not linearizable"
    assert result.failing_keys() == ["x"]


def test_undecided_keys_show_up_to_12_operations_of_their_partial_linearization() -> None:
    """An UNKNOWN key lists the start of where its search stood; the coverage line says how
    much was checked and how much was left."""
    writes = tuple(Operation(i, kv("write", value=i), {}, 0.0, 1.0, i) for i in range(13))
    undecided = KeyResult("x", Verdict.UNKNOWN, 14, 2048, writes)
    empty = KeyResult("y", Verdict.UNKNOWN, 3, 5)
    result = CheckResult(KV, Verdict.UNKNOWN, (undecided, empty), (), 1.25, 17, 2)
    shown = " ; ".join(f"write x := {i}" for i in range(12))
    assert result.lines() == [
        f"key 'x': undecided after 2048 configurations; longest partial linearization 13 of "
        f"14 operations: {shown} ; …",
        "key 'y': undecided after 5 configurations; longest partial linearization 0 of 3 "
        "operations: (nothing)",
    ]
    assert result.to_json()["partial_linearizations"] == {
        "x": [op.to_json() for op in writes],
        "y": [],
    }
    assert result.to_json()["keys"] == {"x": "unknown (search timed out)", "y": str(empty.verdict)}
    assert result.coverage() == "17 operations, 2 keys (2 left unchecked), checked in 1.250 s"
    assert result.exit_status == 3
    twelve = CheckResult(
        KV, Verdict.UNKNOWN, (KeyResult("x", Verdict.UNKNOWN, 12, 1, writes[:12]),), (), 0.5, 12
    )
    assert twelve.lines()[0].endswith(f"{shown}")
    assert twelve.coverage() == "12 operations, 1 keys, checked in 0.500 s"


def test_a_check_out_of_time_before_a_key_is_searched_calls_that_key_unknown() -> None:
    """No time at all: no key was searched, so none is linearizable (not a pass, even
    though key b holds a stale read nobody looked at)."""
    history = [*STALE, at(3, kv("write", value=1) | {"key": "y"}, {}, 0, 1)]
    result = check(KV, history, timeout=0)
    assert {k.key: k.verdict for k in result.keys} == {"x": Verdict.UNKNOWN, "y": Verdict.UNKNOWN}
    assert [(k.operations, k.configurations, k.partial) for k in result.keys] == [
        (3, 0, ()),
        (1, 0, ()),
    ]
    assert (result.verdict, result.exit_status, result.unchecked) == (Verdict.UNKNOWN, 3, 0)


def ops_of(example: Counterexample) -> list[str]:
    return [
        KV.describe_operation(op.input, None if op.pending else op.output)
        for op in example.operations
    ]


def test_the_shortest_failing_prefix_may_end_at_the_first_return() -> None:
    """A read of a value nobody wrote yet fails on its own: the later write is cut off."""
    history = [at(0, kv("read"), {"value": 1}, 0, 1), at(1, kv("write", value=1), {}, 2, 3)]
    (example,) = check(KV, history).counterexamples
    assert ops_of(example) == ["read x → 1"]


def test_an_instantaneous_operation_at_the_cut_belongs_to_the_prefix() -> None:
    """call == return == the cut: the stale read is kept, so the counterexample fails."""
    history = [at(0, kv("write", value=1), {}, 0, 1), at(1, kv("read"), {"value": None}, 2, 2)]
    (example,) = check(KV, history).counterexamples
    assert ops_of(example) == ["write x := 1", "read x → None"]
    assert example.minimal


def test_operations_still_running_at_the_cut_become_unknown_but_keep_their_client() -> None:
    """The write returning at 10 s is cut at 3 s: pending in the counterexample (its return
    shown as …), since it may or may not have taken effect by then."""
    history = [*STALE[:2], at(7, kv("write", value=2), {}, 2.5, 10)]
    (example,) = check(KV, history).counterexamples
    assert example.lines(KV)[1:4] == [
        "  client      0     [0.000000, 1.000000]  write x := 1",
        "  client      1     [2.000000, 3.000000]  read x → None",
        "  client      7            [2.500000, …]  write x := 2",
    ]


def test_shrinking_drops_every_removable_read_and_failed_cas_but_no_write() -> None:
    """A read at the start and a failed compare-and-set change nothing and go; both writes
    stay, even the first one that the violation does not need (dropping a write can turn a
    right read wrong, so writes are never dropped)."""
    history = [
        at(5, kv("read"), {"value": None}, 0, 0.5),
        at(0, kv("write", value=1), {}, 1, 2),
        at(1, kv("cas", expected=5, value=6), {"ok": False}, 3, 4),
        at(2, kv("write", value=2), {}, 5, 6),
        at(3, kv("read"), {"value": 1}, 7, 8),
    ]
    (example,) = check(KV, history).counterexamples
    assert ops_of(example) == ["write x := 1", "write x := 2", "read x → 1"]
    assert example.minimal


def test_shrinking_past_its_deadline_keeps_what_it_has_and_says_it_is_not_minimal() -> None:
    """Out of time before the first removal: both reads stay, marked not minimal."""
    history = [at(0, kv("read"), {"value": 1}, 0, 1), at(1, kv("read"), {"value": 2}, 0, 1)]
    example = shrink(KV, "x", history, seconds=-1)
    assert example.minimal is False
    assert example.key == "x"
    assert len(example.operations) == 2


def test_every_operation_that_could_come_next_is_named_including_one_that_touches() -> None:
    """Stuck after ``write x := 1``: the stale read returning at 3 s and the read called at
    exactly 3 s (touching intervals are concurrent) are both candidates."""
    history = [*STALE[:2], at(3, kv("read"), {"value": 5}, 3, 4)]
    (example,) = check(KV, history, shrink_seconds=0).counterexamples
    assert example.lines(KV)[-4:] == [
        "  then the state is value=1, and none of",
        "    read x → None",
        "    read x → 5",
        "  can take effect next while respecting real time.",
    ]


def test_a_counterexample_that_takes_thousands_of_configurations_to_refute_is_shrunk() -> None:
    """Twelve concurrent writes and a read of a value none wrote, then a write: the prefix
    tried first while shrinking (up to the read) and every later trial need more than 1,024
    configurations (the search pauses and resumes), and the last write is cut off."""
    writes = [at(i, kv("write", value=i), {}, 0, 100) for i in range(12)]
    ghost = at(12, kv("read"), {"value": 99}, 101, 102)
    after = at(13, kv("write", value=0), {}, 103, 104)
    result = check(KV, [*writes, ghost, after])
    assert result.keys[0].configurations > 1024
    (example,) = result.counterexamples
    assert example.minimal
    assert ops_of(example) == [*(f"write x := {i}" for i in range(12)), "read x → 99"]


def test_unknown_outcomes_are_described_as_such_whatever_output_was_recorded() -> None:
    """The history format ignores the output of an operation without a return: the
    explanation and a partial linearization show it as ? (a read's value is shown)."""
    pending = at(4, kv("cas", expected=None, value=1), {"ok": True}, 0, None)
    stale = [*STALE[:2], pending]
    (example,) = check(KV, stale, shrink_seconds=0).counterexamples
    assert "  client      4            [0.000000, …]  cas x None→1 → ?" in example.lines(KV)
    done = at(5, kv("read"), {"value": 1}, 0, 1)
    undecided = KeyResult("x", Verdict.UNKNOWN, 3, 1, (done, pending))
    result = CheckResult(KV, Verdict.UNKNOWN, (undecided,), (), 0.5, 3)
    assert result.lines()[0].endswith("2 of 3 operations: read x → 1 ; cas x None→1 → ?")


def test_a_counterexample_stuck_at_the_start_says_nothing_was_linearized() -> None:
    (example,) = check(KV, [at(0, kv("read"), {"value": 1}, 0, 1)]).counterexamples
    assert "  longest linearization: (nothing)" in example.lines(KV)


def test_a_search_reports_where_it_stands_before_and_while_it_runs() -> None:
    """Not yet run: no linearization, the model's initial state, no configuration, an empty
    memo. Paused after 1,024 configurations: the longest linearization so far and the state
    right after it."""
    counter = replace(KV, init=lambda: 0)
    fresh = Search(counter, STALE)
    assert fresh.unknown() == SearchResult(Verdict.UNKNOWN, (), 0, 0)
    assert fresh.memo_size == 0
    writes = [Operation(i, kv("write", value=i), {}, 0.0, 100.0, i) for i in range(20)]
    paused = Search(KV, [*writes, Operation(20, kv("read"), {"value": 99}, 101.0, 102.0, 20)])
    assert paused.run(until=0.0) is None
    where = paused.unknown()
    assert where.configurations == 1024
    assert where.longest_linearization
    state = KV.init()
    for i in where.longest_linearization:
        state = KV.step(state, writes[i].input, writes[i].output)[1]
    assert where.state_after_longest == state
