"""The ledger checker on small hand-written histories, each small enough to follow on paper:
one rule each (versions, overdrafts, refusals, creation, writers of unknown outcome,
inconclusive histories), the anomaly class and the words that explain it."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest.linearizability import LedgerVerdict, Operation, check_ledger
from loadtest.linearizability.ledger import iter_accounts


def create(account: str, balance: int, at: tuple[float, float | None] = (0, 0.5)) -> Operation:
    output = None if at[1] is None else {"version": 1}
    return Operation("setup", {"op": "create", "account": account, "balance": balance}, output, *at)


def transfer(
    source: str,
    target: str,
    amount: int,
    at: tuple[float, float | None],
    output: dict[str, Any] | None,
    ident: str | None = None,
) -> Operation:
    input: dict[str, Any] = {"op": "transfer", "from": source, "to": target, "amount": amount}
    if ident is not None:
        input["id"] = ident
    return Operation("c1", input, output, *at)


def read(account: str, at: tuple[float, float], **seen: Any) -> Operation:
    return Operation("c2", {"op": "read", "account": account}, seen, *at)


def snapshot(at: tuple[float, float], **seen: dict[str, Any]) -> Operation:
    accounts = sorted(seen)
    return Operation("c3", {"op": "snapshot", "accounts": accounts}, {"accounts": seen}, *at)


def text(history: list[Operation]) -> str:
    return "\n".join(check_ledger(history).lines())


# ---- the rules a graph cannot check ------------------------------------------------------


def test_two_transfers_reporting_the_same_version_of_their_source_are_a_lost_update() -> None:
    """Versions go up by one per write: two committed transfers from a that both report a@2
    mean one debit overwrote the other (the version check)."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 20, (3, 4), {"id": "t2", "from_version": 2, "to_version": 3}),
    ]
    result = check_ledger(history)
    assert result.counts == {"duplicate-version": 1}
    assert result.anomalies[0].operations == (2, 3)
    assert "a@2 has two writers, #2 (transfer t1) and #3 (transfer t2)" in text(history)


def test_reads_naming_two_writers_of_one_version_are_a_lost_update() -> None:
    """Two reads of b@2 that name different transfers as its writer."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 10, (1, 2), None, ident="t2"),
        read("b", (3, 4), balance=10, version=2, writer="t1"),
        read("b", (3, 4), balance=10, version=2, writer="t2"),
        snapshot((5, 6), a={"balance": 90, "version": 2}, b={"balance": 10, "version": 2}),
    ]
    assert check_ledger(history).counts == {"duplicate-version": 1}
    assert "reads of b@2 name different writers (t1, t2)" in text(history)


def test_a_committed_transfer_that_overdraws_its_source_is_a_wrong_balance() -> None:
    """a holds 100; a transfer of 150 commits and the snapshot agrees with its arithmetic
    (a: −50, b: 150, money conserved): the only fault is the overdraft."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 150, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        snapshot((3, 4), a={"balance": -50, "version": 2}, b={"balance": 150, "version": 2}),
    ]
    result = check_ledger(history)
    assert result.counts == {"wrong-balance": 1}
    assert result.anomalies[0].operations == (2,)
    assert "#2 (transfer t1) left a at -50: overdrawn" in text(history)


def test_a_transfer_that_empties_its_source_exactly_is_fine() -> None:
    """Overdrawn means below zero: moving the whole balance is allowed."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 100, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        snapshot((3, 4), a={"balance": 0, "version": 2}, b={"balance": 100, "version": 2}),
    ]
    assert check_ledger(history).verdict is LedgerVerdict.STRICTLY_SERIALIZABLE


def test_a_refusal_for_insufficient_funds_while_the_source_held_enough_is_reported() -> None:
    """The refusal of 60 overlaps t1, so it could have read a@1 (100) or a@2 (70): both
    held enough."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 30, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 60, (1.5, 3), {"rejected": "insufficient_funds"}),
        snapshot((4, 5), a={"balance": 70, "version": 2}, b={"balance": 30, "version": 2}),
    ]
    result = check_ledger(history)
    assert result.counts == {"wrong-rejection": 1}
    assert result.anomalies[0].operations == (3,)
    assert "but a held at least 60 at every version it could have read (a@1..2)" in text(history)


def test_a_refusal_is_right_when_one_version_in_its_interval_held_too_little() -> None:
    """The same refusal for 80: a@2 held 70, which a transfer running alongside t1 may read."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 30, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 80, (1.5, 3), {"rejected": "insufficient_funds"}),
        snapshot((4, 5), a={"balance": 70, "version": 2}, b={"balance": 30, "version": 2}),
    ]
    assert check_ledger(history).verdict is LedgerVerdict.STRICTLY_SERIALIZABLE


def test_a_refusal_after_a_later_version_returned_is_judged_on_that_version_only() -> None:
    """Invoked after t1 returned, the refusal could only read a@2 = 70: refusing 80 is
    right, although a@1 held 100; refusing 60 is not."""
    base = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 30, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        snapshot((4, 5), a={"balance": 70, "version": 2}, b={"balance": 30, "version": 2}),
    ]
    refused = {"rejected": "insufficient_funds"}
    assert check_ledger([*base, transfer("a", "b", 80, (3, 3.5), refused)]).counts == {}
    too_soon = check_ledger([*base, transfer("a", "b", 60, (3, 3.5), refused)])
    assert too_soon.counts == {"wrong-rejection": 1}


def test_a_refusal_before_a_later_version_was_written_is_judged_on_the_earlier_one() -> None:
    """Returned before t2 was invoked, the refusal could only read a@2 = 70 (not a@3 = 170)."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 30, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 80, (3, 4), {"rejected": "insufficient_funds"}),
        transfer("b", "a", 100, (5, 6), {"id": "t2", "from_version": 3, "to_version": 3}),
        snapshot((7, 8), a={"balance": 170, "version": 3}, b={"balance": -70, "version": 3}),
    ]
    assert "wrong-rejection" not in check_ledger(history).counts


def test_a_refusal_for_another_reason_is_not_judged_on_funds() -> None:
    """Only refusals for insufficient funds say something about the balance."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"rejected": "account_frozen"}),
        snapshot((3, 4), a={"balance": 100, "version": 1}, b={"balance": 0, "version": 1}),
    ]
    assert check_ledger(history).verdict is LedgerVerdict.STRICTLY_SERIALIZABLE


def test_a_refusal_is_not_judged_while_a_transfer_of_unknown_outcome_touches_its_source() -> None:
    """A transfer of unknown outcome may have emptied a unseen: the refusal may be right."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 90, (1, None), None, ident="t1"),
        transfer("a", "b", 60, (2, 3), {"rejected": "insufficient_funds"}),
        snapshot((4, 5), a={"balance": 100, "version": 1}, b={"balance": 0, "version": 1}),
    ]
    assert check_ledger(history).counts == {}


# ---- creation ----------------------------------------------------------------------------


def test_not_found_after_the_creation_returned_is_a_stale_read() -> None:
    """The creation returned at 0.5; a read invoked at 1 says the account does not exist."""
    history = [create("a", 100), create("b", 0), read("a", (1, 2), found=False)]
    history.append(
        snapshot((3, 4), a={"balance": 100, "version": 1}, b={"balance": 0, "version": 1})
    )
    assert check_ledger(history).counts == {"G-single-realtime": 1}
    assert "rw: #2 (read) read a@0, and #0 (create) wrote the later a@1" in text(history)


def test_not_found_during_the_creation_is_fine() -> None:
    """A read that overlaps the creation may come before it."""
    history = [
        create("a", 100, at=(0, 2)),
        create("b", 0),
        read("a", (1, 1.5), found=False),
        snapshot((3, 4), a={"balance": 100, "version": 1}, b={"balance": 0, "version": 1}),
    ]
    assert check_ledger(history).verdict is LedgerVerdict.STRICTLY_SERIALIZABLE


def test_a_read_of_an_account_before_its_creation_was_invoked_is_a_future_read() -> None:
    """The read returned at 1; the creation it saw was invoked at 2."""
    history = [
        read("a", (0, 1), balance=100, version=1, writer="create"),
        create("a", 100, at=(2, 3)),
        create("b", 0),
        snapshot((4, 5), a={"balance": 100, "version": 1}, b={"balance": 0, "version": 1}),
    ]
    assert check_ledger(history).counts == {"G1c-realtime": 1}


def test_a_read_of_an_account_created_outside_the_history_is_accepted() -> None:
    """Version 1 with no creation in the history: an account made before the run."""
    history = [
        create("b", 0),
        snapshot((1, 2), a={"balance": 50, "version": 1}, b={"balance": 0, "version": 1}),
        read("a", (3, 4), balance=50, version=1),
    ]
    result = check_ledger(history)
    assert result.counts == {}
    assert result.accounts == 2


def test_a_creation_read_with_another_balance_is_a_wrong_balance() -> None:
    """a was created with 100; a@1 read with 90."""
    history = [
        create("a", 100),
        create("b", 0),
        read("a", (1, 2), balance=90, version=1),
    ]
    assert check_ledger(history).counts == {"wrong-balance": 1}
    assert "a was created with 100 but a@1 was read with 90" in text(history)


# ---- what can be concluded ---------------------------------------------------------------


def test_too_few_known_outcomes_is_inconclusive_and_says_why() -> None:
    """One of three strong operations answered: fewer than half."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None),
        transfer("a", "b", 10, (1, None), None),
        snapshot((3, 4), a={"balance": 100, "version": 1}, b={"balance": 0, "version": 1}),
    ]
    result = check_ledger(history)
    assert result.verdict is LedgerVerdict.INCONCLUSIVE
    assert (result.strong, result.known, result.snapshots) == (3, 1, 1)
    assert result.reasons == ("only 1 of 3 strong operations have a known outcome (want half)",)
    assert result.exit_status == 3


def test_exactly_half_known_is_enough() -> None:
    """Two of four strong operations answered: half is enough."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None),
        transfer("a", "b", 10, (1, None), None),
        read("a", (3, 4), balance=100, version=1),
        snapshot((3, 4), a={"balance": 100, "version": 1}, b={"balance": 0, "version": 1}),
    ]
    result = check_ledger(history)
    assert result.verdict is LedgerVerdict.STRICTLY_SERIALIZABLE
    assert result.exit_status == 0
    assert result.headline() == "strictly serializable"


def test_no_multi_account_snapshot_is_inconclusive() -> None:
    """Reads of one account at a time cannot see a transfer half applied."""
    history = [create("a", 100), read("a", (1, 2), balance=100, version=1)]
    history.append(snapshot((3, 4), a={"balance": 100, "version": 1}))
    result = check_ledger(history)
    assert result.verdict is LedgerVerdict.INCONCLUSIVE
    assert result.snapshots == 0
    assert result.headline() == (
        "inconclusive: no multi-account snapshot: nothing could see a transfer half applied "
        "at one instant"
    )


def test_anomalies_beat_inconclusive_and_are_counted_beyond_those_explained() -> None:
    """Twelve accounts each read at creation with a wrong balance, and no snapshot: twelve
    anomalies counted, ten explained, the rest summed up; no inconclusive reasons."""
    history = [create(f"a{i}", 100) for i in range(12)]
    history += [read(f"a{i}", (1, 2), balance=101, version=1) for i in range(12)]
    result = check_ledger(history)
    assert result.verdict is LedgerVerdict.NOT_STRICTLY_SERIALIZABLE
    assert result.exit_status == 2
    assert result.counts == {"wrong-balance": 12}
    assert len(result.anomalies) == 10
    assert result.lines()[-1] == "… and 2 more anomalies (see the JSON output)"
    assert result.reasons == ()
    assert result.headline() == "not strictly serializable: wrong-balance ×12"


def test_the_json_summary_names_the_property_the_counts_and_the_coverage() -> None:
    """The lost update above, as ``caplab check --json`` prints it."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 20, (3, 4), {"id": "t2", "from_version": 2, "to_version": 3}),
    ]
    result = check_ledger(history)
    summary = result.to_json()
    assert summary["property"] == "strict serializability"
    assert summary["model"] == "ledger"
    assert summary["verdict"] == "not strictly serializable: duplicate-version"
    assert summary["holds"] is False
    assert summary["anomaly_counts"] == {"duplicate-version": 1}
    assert summary["anomalies"] == [
        {
            "anomaly": "duplicate-version",
            "operations": [2, 3],
            "explanation": list(result.anomalies[0].explanation),
        }
    ]
    assert (summary["operations"], summary["accounts"]) == (4, 2)
    assert (summary["strong_operations"], summary["known_outcome"]) == (2, 2)
    assert summary["multi_account_snapshots"] == 0
    assert summary["inconclusive_because"] == []
    assert result.coverage().startswith(
        "4 operations, 2 accounts, 2/2 strong operations with a known outcome, 0 "
        "multi-account snapshots, checked in "
    )


def test_the_accounts_an_operation_touches() -> None:
    """For drawing a history per account: creations and reads one, snapshots theirs,
    transfers source then target."""
    assert list(iter_accounts(create("a", 1))) == ["a"]
    assert list(iter_accounts(read("b", (0, 1), found=False))) == ["b"]
    assert list(iter_accounts(snapshot((0, 1), c={}, a={}))) == ["a", "c"]
    assert list(iter_accounts(transfer("x", "y", 1, (0, 1), None))) == ["x", "y"]


# ---- who wrote what ----------------------------------------------------------------------


def test_a_retried_creation_counts_the_attempt_that_answered() -> None:
    """A creation of unknown outcome retried with an answer: the money created is known, so
    a snapshot seeing t1's debit but not its credit is a conservation anomaly too."""
    history = [
        create("a", 100, at=(0, None)),
        create("a", 100, at=(0.2, 0.5)),
        create("b", 0),
        transfer("a", "b", 10, (1, 5), {"id": "t1", "from_version": 2, "to_version": 2}),
        snapshot((2, 3), a={"balance": 90, "version": 2}, b={"balance": 0, "version": 1}),
    ]
    assert check_ledger(history).counts == {"G-single": 1, "conservation": 1}
    assert "a snapshot of all 2 accounts adds up to 90, not the 100 created" in text(history)


def test_money_is_not_counted_while_a_creation_s_outcome_is_unknown() -> None:
    """Without an answer the created balance may not exist: conservation is not judged."""
    history = [
        create("a", 100),
        create("b", 0, at=(0, None)),
        snapshot((1, 2), a={"balance": 100, "version": 1}, b={"balance": 10, "version": 1}),
    ]
    assert "conservation" not in check_ledger(history).counts


def test_conservation_needs_a_snapshot_of_every_account_with_balances() -> None:
    """A snapshot missing an account, or a balance, cannot add up the money."""
    history = [
        create("a", 100),
        create("b", 0),
        create("c", 0),
        snapshot((1, 2), a={"balance": 90, "version": 1}, b={"balance": 0, "version": 1}),
        snapshot(
            (1, 2),
            a={"balance": 100, "version": 1},
            b={"balance": 0, "version": 1},
            c={"version": 1},
        ),
    ]
    assert "conservation" not in check_ledger(history).counts


def test_a_snapshot_that_reports_an_account_as_null_says_it_was_not_found() -> None:
    """A null entry reads as "not found" (as for a read): after the creation returned, that
    is a stale read, not a crash of the conservation check."""
    history = [
        create("a", 100),
        create("b", 0),
        Operation(
            "c3",
            {"op": "snapshot", "accounts": ["a", "b"]},
            {"accounts": {"a": {"balance": 100, "version": 1}, "b": None}},
            1,
            2,
        ),
    ]
    assert check_ledger(history).counts == {"G-single-realtime": 1}


def test_integer_transfer_ids_match_the_writers_reads_name() -> None:
    """A client-chosen id 7 and a read naming writer 7 are the same transfer."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None, ident=7),  # type: ignore[arg-type]
        read("b", (2, 3), balance=10, version=2, writer=7),
        snapshot((4, 5), a={"balance": 90, "version": 2}, b={"balance": 10, "version": 2}),
    ]
    result = check_ledger(history)
    assert result.counts == {}
    stale = text([*history, read("a", (6, 7), balance=100, version=1)])
    assert "rw: #5 (read) read a@1, and #2 (transfer 7) wrote the later a@2" in stale


def test_a_read_naming_an_unknown_writer_of_a_version_another_transfer_claimed() -> None:
    """b@2 is t1's by its response; a read says 'x9' wrote it: one of them is lost."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        read("b", (3, 4), balance=10, version=2, writer="x9"),
    ]
    assert check_ledger(history).counts == {"duplicate-version": 1}
    assert "b@2 is claimed by #2 (transfer t1) but read as written by 'x9'" in text(history)


def test_a_read_naming_a_transfer_that_did_not_touch_the_account_is_garbage() -> None:
    history = [
        create("a", 100),
        create("b", 0),
        create("c", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        read("c", (3, 4), balance=10, version=2, writer="t1"),
    ]
    assert check_ledger(history).counts == {"garbage-read": 1}
    assert "c@2 was read, but no operation of the history wrote it (names #3 (transfer t1))" in (
        text(history)
    )


def test_a_read_naming_the_creation_for_a_later_version_is_garbage() -> None:
    history = [create("a", 100), read("a", (1, 2), balance=100, version=2, writer="create")]
    assert check_ledger(history).counts == {"garbage-read": 1}
    assert "(names its creation, version 1)" in text(history)


def test_negative_versions_are_garbage_whether_read_or_reported() -> None:
    history = [
        create("a", 100),
        create("b", 0),
        read("a", (1, 2), balance=100, version=-1),
        transfer("a", "b", 10, (3, 4), {"id": "t1", "from_version": 0, "to_version": 2}),
    ]
    assert check_ledger(history).counts == {"garbage-read": 2}
    assert "a@-1 was read: no operation produces such a version" in text(history)
    assert "a transfer reported a@0, a version no operation produces" in text(history)


def test_a_version_two_transfers_of_unknown_outcome_could_have_written_is_left_open() -> None:
    """Both transfers of 10 could have written b@2: neither is known to have committed, and
    a contradiction through that version names both candidates."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None),
        transfer("a", "b", 10, (1, None), None),
        read("b", (2, 3), balance=10, version=2),
        read("b", (4, 5), balance=0, version=1),
    ]
    assert check_ledger(history).counts == {"G-single-realtime": 1}
    assert "an unidentified transfer (one of #2, #3)" in text(history)


def test_a_version_only_one_transfer_of_unknown_outcome_fits_is_its_write() -> None:
    """b@2 holds 10 more than b@1: of two pending transfers (10 and 20) only the first fits,
    so it committed; it also wrote a, after a@1, which a later read of a@1 contradicts."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None),
        transfer("a", "b", 20, (1, None), None),
        read("b", (2, 3), balance=10, version=2),
        read("a", (4, 5), balance=100, version=1),
    ]
    assert check_ledger(history).counts == {"G-single-realtime": 1}
    assert "#2 (transfer) committed (it was observed), so it also wrote a" in text(history)


def test_a_version_no_transfer_of_unknown_outcome_fits_is_garbage() -> None:
    """b@2 holds 30 more than b@1, and the only pending transfer moves 10."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None),
        read("b", (2, 3), balance=30, version=2),
    ]
    assert check_ledger(history).counts == {"garbage-read": 1}
    assert "(no transfer of unknown outcome fits)" in text(history)


# ---- explanations ------------------------------------------------------------------------


def test_the_headline_lists_every_class_with_its_count() -> None:
    """Two wrong creation reads and a garbage read: ``garbage-read, wrong-balance ×2``."""
    history = [create("a", 100), create("b", 0)]
    history += [read("a", (1, 2), balance=101, version=1), read("b", (1, 2), balance=1, version=1)]
    history.append(read("a", (1, 2), balance=1, version=-3))
    result = check_ledger(history)
    assert result.headline() == "not strictly serializable: garbage-read, wrong-balance ×2"
    assert not any(line.startswith("…") for line in result.lines())


def test_an_inconclusive_headline_gives_every_reason() -> None:
    history = [create("a", 100), transfer("a", "a", 1, (1, None), None)]
    assert check_ledger(history).headline() == (
        "inconclusive: only 0 of 1 strong operations have a known outcome (want half); no "
        "multi-account snapshot: nothing could see a transfer half applied at one instant"
    )


def test_eleven_anomalies_leave_one_unexplained() -> None:
    history = [create(f"a{i}", 100) for i in range(11)]
    history += [read(f"a{i}", (1, 2), balance=101, version=1) for i in range(11)]
    result = check_ledger(history)
    assert result.lines()[-1] == "… and 1 more anomalies (see the JSON output)"
    assert result.to_json()["seconds"] == round(result.seconds, 6)


def test_a_write_cycle_names_the_account_each_ww_edge_is_about() -> None:
    """t1 (a→b) wrote a@3 and b@2, t2 (b→a) wrote b@3 and a@2: t1 precedes t2 on b, t2
    precedes t1 on a (G0); each edge names its own account, not the first one written."""
    history = [
        create("a", 100),
        create("b", 100),
        transfer("a", "b", 10, (1, 5), {"id": "t1", "from_version": 3, "to_version": 2}),
        transfer("b", "a", 5, (1, 5), {"id": "t2", "from_version": 3, "to_version": 2}),
    ]
    lines = text(history)
    assert check_ledger(history).counts == {"G0": 1}
    assert "ww: #2 (transfer t1) wrote b@2, #3 (transfer t2) wrote the later b@3" in lines
    assert "ww: #3 (transfer t2) wrote a@2, #2 (transfer t1) wrote the later a@3" in lines


def test_a_transfer_seen_on_one_account_wrote_the_other_after_its_last_known_version() -> None:
    """P (c→b) is seen on c, so it committed and wrote b — after b@2, t1's, since t1
    returned before P was invoked. A later read of b@2 then misses P's write."""
    history = [
        create("a", 100),
        create("b", 0),
        create("c", 100),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("c", "b", 5, (3, None), None, ident="p"),
        read("c", (4, 5), balance=95, version=2, writer="p"),
        read("b", (6, 7), balance=10, version=2, writer="t1"),
    ]
    assert check_ledger(history).counts == {"G-single-realtime": 1}
    assert (
        "rw: #6 (read) read b@2; #4 (transfer p) committed (it was observed), so it also "
        "wrote b, at a version after 2"
    ) in text(history)


def test_an_account_created_before_the_history_is_named_as_such() -> None:
    """a@1 was read, then a later read says a does not exist: the creation (not in the
    history) precedes the second read."""
    history = [
        create("b", 0),
        read("a", (1, 2), balance=50, version=1),
        read("a", (3, 4), found=False),
    ]
    result = check_ledger(history)
    assert result.counts == {"G-single-realtime": 1}
    assert result.anomalies[0].operations == (1, 2)  # the creation is not an operation
    assert "  the creation of a (not in the history)" in result.lines()
    named = [history[0], read("a", (1, 2), balance=50, version=1, writer="create"), history[2]]
    assert "  the creation of a (not in the history)" in check_ledger(named).lines()


def test_a_snapshot_without_an_account_it_asked_for_shows_a_question_mark() -> None:
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        Operation(
            "c3",
            {"op": "snapshot", "accounts": ["a", "b"]},
            {"accounts": {"a": {"balance": 100, "version": 1}}},
            3,
            4,
        ),
    ]
    assert "snapshot → a: 100 @1 b: ?" in text(history)


def test_an_answer_recorded_for_an_operation_of_unknown_outcome_is_ignored() -> None:
    """No return time: its output says nothing, and the explanation says so."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), {"id": "t1", "from_version": 2, "to_version": 2}),
        read("a", (2, 3), balance=90, version=2),
        read("b", (4, 5), balance=0, version=1),
    ]
    result = check_ledger(history)
    assert result.counts == {"G-single-realtime": 1}
    assert (result.strong, result.known) == (3, 2)
    assert "transfer 10 a→b → outcome unknown" in text(history)


def test_an_intermediate_read_after_the_transfer_returned_is_only_g1b() -> None:
    """The version t1 wrote on the way is set aside: no stale-read cycle on top of G1b."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 3, "to_version": 2}),
        read("a", (3, 4), balance=95, version=2, writer="t1"),
    ]
    assert check_ledger(history).counts == {"G1b": 1}


def test_a_read_naming_a_transfer_for_a_version_after_its_own_is_garbage() -> None:
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        read("a", (3, 4), balance=80, version=3, writer="t1"),
    ]
    assert check_ledger(history).counts == {"garbage-read": 1}
    assert (
        "garbage-read: a@3 was read, but no operation of the history wrote it (names #2 "
        "(transfer t1))"
    ) in check_ledger(history).lines()


def test_a_read_naming_a_pending_transfer_for_a_claimed_version_is_a_lost_update() -> None:
    """b@2 is t1's by its response, and a read names the transfer p (unknown outcome)."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 10, (1, None), None, ident="p"),
        read("b", (3, 4), balance=10, version=2, writer="p"),
    ]
    assert check_ledger(history).counts == {"duplicate-version": 1}
    assert (
        "b@2 has two writers, #2 (transfer t1) and #3 (transfer p) (read by #4 (read)): one "
        "update was lost"
    ) in text(history)


def test_a_transfer_that_already_wrote_an_account_cannot_write_it_again() -> None:
    """p (unknown outcome) wrote a@2, as a read names it; a@3 then has no possible writer."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None, ident="p"),
        read("a", (2, 3), balance=90, version=2, writer="p"),
        read("a", (4, 5), balance=80, version=3),
    ]
    assert check_ledger(history).counts == {"garbage-read": 1}


def test_a_writer_named_by_reads_only_is_identified_among_transfers_of_unknown_outcome() -> None:
    """A read names x7 (an id the history does not know) as the writer of b@2: the one
    pending transfer that fits committed, so it also wrote a, which a later read misses."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, None), None),
        read("b", (2, 3), balance=10, version=2, writer="x7"),
        read("a", (4, 5), balance=100, version=1),
    ]
    assert check_ledger(history).counts == {"G-single-realtime": 1}


def test_an_integer_writer_names_the_transfer_with_that_id() -> None:
    """A read names writer 7 (a number) for b@2, which t1 claimed by its response: the
    transfer whose id is 7 is the second writer."""
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 2}),
        transfer("a", "b", 10, (1, None), None, ident=7),  # type: ignore[arg-type]
        read("b", (3, 4), balance=10, version=2, writer=7),
    ]
    assert (
        "b@2 has two writers, #2 (transfer t1) and #3 (transfer 7) (read by #4 (read)): one "
        "update was lost"
    ) in text(history)


def test_a_timed_out_retry_of_an_answered_creation_does_not_hide_the_money() -> None:
    """The creation answered, its retry timed out: the answered one counts."""
    history = [
        create("a", 100),
        create("a", 100, at=(0.2, None)),
        create("b", 0),
        transfer("a", "b", 10, (1, 5), {"id": "t1", "from_version": 2, "to_version": 2}),
        snapshot((2, 3), a={"balance": 90, "version": 2}, b={"balance": 0, "version": 1}),
    ]
    assert check_ledger(history).counts == {"G-single": 1, "conservation": 1}


def test_a_write_known_only_from_its_other_account_is_ordered_after_the_last_known_one() -> None:
    """p (c→b, unknown outcome) was seen on c at [2, 3], so it wrote b before 3; but t1,
    invoked at 5, wrote b@2 right after b's creation: p's write of b must come after t1's,
    and t1 after the read that saw p. A cycle with the ww edge to p explained."""
    history = [
        create("a", 100),
        create("b", 0),
        create("c", 100),
        transfer("c", "b", 5, (1, None), None, ident="p"),
        read("c", (2, 3), balance=95, version=2, writer="p"),
        transfer("a", "b", 10, (5, 6), {"id": "t1", "from_version": 2, "to_version": 2}),
    ]
    assert check_ledger(history).counts == {"G1c-realtime": 1}
    assert (
        "ww: #5 (transfer t1) wrote b@2; #3 (transfer p) committed (it was observed), so it "
        "also wrote b, at a later version"
    ) in text(history)


def test_an_unknown_operation_is_refused_by_name() -> None:
    history = [Operation("c", {"op": "deposit", "account": "a"}, {}, 0, 1)]
    with pytest.raises(ValueError, match=r"^ledger model: unknown operation 'deposit'$"):
        check_ledger(history)


def test_every_multi_account_snapshot_is_counted() -> None:
    seen = {"a": {"balance": 100, "version": 1}, "b": {"balance": 0, "version": 1}}
    history = [create("a", 100), create("b", 0), snapshot((1, 2), **seen)]
    history.append(snapshot((3, 4), **seen))
    assert check_ledger(history).snapshots == 2


def test_a_transfer_reporting_version_one_competes_with_the_creation() -> None:
    history = [
        create("a", 100),
        create("b", 0),
        transfer("a", "b", 10, (1, 2), {"id": "t1", "from_version": 2, "to_version": 1}),
    ]
    assert check_ledger(history).counts == {"duplicate-version": 1}


@pytest.mark.parametrize("side", ["from", "to"])
def test_a_previous_writer_a_transfer_reports_identifies_a_transfer_of_unknown_outcome(
    side: str,
) -> None:
    """t2 says p1 wrote the version of a it replaced: p1 committed (of two pending
    transfers from a, only the one named), so it also wrote b, which a later read misses."""
    other = {"from": "to", "to": "from"}[side]
    output = {"id": "t2", f"{side}_version": 3, f"{other}_version": 2}
    output |= {f"{side}_previous_writer": "p1", f"{other}_previous_writer": "create"}
    source, target = ("a", "d") if side == "from" else ("d", "a")
    history = [
        create("a", 100),
        create("b", 0),
        create("c", 0),
        create("d", 100),
        transfer("a", "b", 10, (1, None), None, ident="p1"),
        transfer("a", "c", 10, (1, None), None),
        transfer(source, target, 5, (2, 3), output),
        read("b", (4, 5), balance=0, version=1),
    ]
    assert check_ledger(history).counts == {"G-single-realtime": 1}
