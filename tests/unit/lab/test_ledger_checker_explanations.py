# ruff: noqa: E501 (the explanations are compared whole, one line each)
"""Every anomaly of the committed ledger histories explained in words, line for line: the
class and why, each operation involved (client, interval, what it did and saw) and, for a
cycle, each dependency with its reason. Checked by hand against each file's operations."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.linearizability import check_ledger
from loadtest.linearizability.history import load_history

CORPUS = Path(__file__).parents[2] / "data" / "histories" / "ledger"

EXPLANATIONS = {
    "conservation": (
        "conservation: a snapshot of all 3 accounts adds up to 90, not the 100 created",
        "  #5     client     s1               [2, 3]  snapshot → a: 90 @2 b: 0 @1 c: 0 @1",
    ),
    "fractured-read": (
        "G-single-realtime: a cycle of 3 operations that no serial order can explain",
        "  #2     client     w1              [1, 10]  transfer 10 a→b → a@2 b@2",
        "  #3     client     r1               [2, 3]  read a → 90 @2",
        "  #4     client     r1               [4, 5]  read b → 0 @1",
        "  each must precede the next:",
        "    #4 (read) → #2 (transfer)  rw: #4 (read) read b@1, and #2 (transfer) wrote the later b@2",
        "    #2 (transfer) → #3 (read)  wr: #3 (read) read a@2, which #2 (transfer) wrote",
        "    #3 (read) → #4 (read)  rt: #3 (read) returned at 3, before #4 (read) was invoked at 4",
    ),
    "fractured-snapshot": (
        "conservation: a snapshot of all 2 accounts adds up to 90, not the 100 created",
        "  #3     client     s1               [2, 3]  snapshot → a: 90 @2 b: 0 @1",
        "G-single: a cycle of 2 operations that no serial order can explain",
        "  #2     client     w1              [1, 10]  transfer 10 a→b → a@2 b@2",
        "  #3     client     s1               [2, 3]  snapshot → a: 90 @2 b: 0 @1",
        "  each must precede the next:",
        "    #3 (snapshot) → #2 (transfer)  rw: #3 (snapshot) read b@1, and #2 (transfer) wrote the later b@2",
        "    #2 (transfer) → #3 (snapshot)  wr: #3 (snapshot) read a@2, which #2 (transfer) wrote",
    ),
    "g0-write-cycle": (
        "G0: a cycle of 2 operations that no serial order can explain",
        "  #2     client     w1               [1, 5]  transfer 10 a→b → a@2 b@3",
        "  #3     client     w2               [1, 5]  transfer 5 b→a → b@2 a@3",
        "  each must precede the next:",
        "    #2 (transfer t1) → #3 (transfer t2)  ww: #2 (transfer t1) wrote a@2, #3 (transfer t2) wrote the later a@3",
        "    #3 (transfer t2) → #2 (transfer t1)  ww: #3 (transfer t2) wrote b@2, #2 (transfer t1) wrote the later b@3",
    ),
    "g1a-aborted-read": (
        "G1a: a@2 was read as written by #2 (transfer t9), which was rejected (aborted read)",
        "  #2     client     w1               [1, 2]  transfer 50 b→a → rejected (insufficient_funds)",
        "  #3     client     r1               [3, 4]  read a → 150 @2 by t9",
    ),
    "g1b-intermediate-read": (
        "G1b: a@2 was read as written by #2 (transfer t1), whose final version of a is 3 (intermediate read)",
        "  #2     client     w1              [1, 10]  transfer 10 a→b → a@3 b@2",
        "  #3     client     r1               [2, 3]  read a → 95 @2 by t1",
    ),
    "g1c-realtime-future-read": (
        "G1c-realtime: a cycle of 2 operations that no serial order can explain",
        "  #2     client     r1               [1, 2]  read b → 10 @2 by t1",
        "  #3     client     w1               [3, 4]  transfer 10 a→b → a@2 b@2",
        "  each must precede the next:",
        "    #2 (read) → #3 (transfer t1)  rt: #2 (read) returned at 2, before #3 (transfer t1) was invoked at 3",
        "    #3 (transfer t1) → #2 (read)  wr: #2 (read) read b@2, which #3 (transfer t1) wrote",
    ),
    "g2-long-fork": (
        "G2: a cycle of 4 operations that no serial order can explain",
        "  #4     client     w1              [1, 10]  transfer 10 a→c → a@2 c@2",
        "  #5     client     w2              [1, 10]  transfer 10 b→d → b@2 d@2",
        "  #6     client     s1               [2, 9]  snapshot → a: 90 @2 b: 100 @1",
        "  #7     client     s2               [2, 9]  snapshot → a: 100 @1 b: 90 @2",
        "  each must precede the next:",
        "    #4 (transfer t1) → #6 (snapshot)  wr: #6 (snapshot) read a@2, which #4 (transfer t1) wrote",
        "    #6 (snapshot) → #5 (transfer t2)  rw: #6 (snapshot) read b@1, and #5 (transfer t2) wrote the later b@2",
        "    #5 (transfer t2) → #7 (snapshot)  wr: #7 (snapshot) read b@2, which #5 (transfer t2) wrote",
        "    #7 (snapshot) → #4 (transfer t1)  rw: #7 (snapshot) read a@1, and #4 (transfer t1) wrote the later a@2",
    ),
    "garbage-read": (
        "garbage-read: a@7 was read, but no operation of the history wrote it (no transfer of unknown outcome fits)",
        "  #3     client     r1               [3, 4]  read a → 90 @7",
    ),
    "lost-update": (
        "duplicate-version: a@2 has two writers, #3 (transfer) and #4 (transfer) (its response): one update was lost",
        "  #3     client     w1               [1, 3]  transfer 10 a→b → a@2 b@2",
        "  #4     client     w2               [1, 3]  transfer 10 a→c → a@2 c@2",
    ),
    "not-found-after-create": (
        "G-single-realtime: a cycle of 2 operations that no serial order can explain",
        "  #0     client  setup             [0, 0.5]  create a with 100",
        "  #2     client     r1               [1, 2]  read a → not found",
        "  each must precede the next:",
        "    #2 (read) → #0 (create)  rw: #2 (read) read a@0, and #0 (create) wrote the later a@1",
        "    #0 (create) → #2 (read)  rt: #0 (create) returned at 0.5, before #2 (read) was invoked at 1",
    ),
    "stale-read": (
        "G-single-realtime: a cycle of 2 operations that no serial order can explain",
        "  #2     client     w1               [1, 2]  transfer 10 a→b → a@2 b@2",
        "  #3     client     r1               [3, 4]  read a → 100 @1",
        "  each must precede the next:",
        "    #3 (read) → #2 (transfer)  rw: #3 (read) read a@1, and #2 (transfer) wrote the later a@2",
        "    #2 (transfer) → #3 (read)  rt: #2 (transfer) returned at 2, before #3 (read) was invoked at 3",
    ),
    "unknown-transfer-half-applied": (
        "G-single-realtime: a cycle of 3 operations that no serial order can explain",
        "  #2     client     w1               [1, …]  transfer 10 a→b → outcome unknown",
        "  #3     client     r1               [2, 3]  read a → 90 @2",
        "  #4     client     r1             [20, 21]  read b → 0 @1",
        "  each must precede the next:",
        "    #4 (read) → #2 (transfer)  rw: #4 (read) read b@1; #2 (transfer) committed (it was observed), so it also wrote b, at a version after 1",
        "    #2 (transfer) → #3 (read)  wr: #3 (read) read a@2, which #2 (transfer) wrote",
        "    #3 (read) → #4 (read)  rt: #3 (read) returned at 3, before #4 (read) was invoked at 20",
    ),
    "wrong-balance": (
        "wrong-balance: a@2 holds 80, but a@1 held 100 and #2 (transfer) moved -10",
        "  #2     client     w1               [1, 2]  transfer 10 a→b → a@2 b@2",
        "  #3     client     r1               [3, 4]  read a → 80 @2",
    ),
    "wrong-rejection": (
        "wrong-rejection: #2 (transfer) was refused for insufficient funds, but a held at least 10 at every version it could have read (a@1..1)",
        "  #2     client     w1               [1, 2]  transfer 10 a→b → rejected (insufficient_funds)",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPLANATIONS))
def test_each_anomaly_is_explained_line_for_line(name: str) -> None:
    history = load_history(CORPUS / f"{name}.json")
    assert tuple(check_ledger(history.operations).lines()) == EXPLANATIONS[name]
