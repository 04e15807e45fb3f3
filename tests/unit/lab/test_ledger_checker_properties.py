"""Property tests of the ledger checker (Hypothesis).

Histories come from a sequential ledger model: every operation takes effect at one instant
(its linearization point) inside a drawn [call, return] interval, so neighbouring operations
overlap at random; transfers of unknown outcome have no return and commit or not at random;
reads and snapshots may be of unknown outcome too; reads name the writer of each version or
leave it to the checker to infer. Such a history is always strictly serializable, so the
checker must never report an anomaly. The same history with one anomaly injected must always
be rejected, with exactly that anomaly's class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loadtest.linearizability import LedgerVerdict, Operation, check_ledger

CREATED = (-20.0, -19.0)
"""Every account is created in this interval, before any drawn operation is invoked."""
EARLY = (-15.0, -14.0)
"""An injected operation that runs after the creations and before everything else."""


@dataclass
class Run:
    """A generated history and the model's truth about it."""

    history: list[Operation]
    accounts: list[str]
    # account -> versions (index v - 1 is version v): (balance, writer id)
    versions: dict[str, list[tuple[int, str]]]
    # position in the history -> the transfer's id, for transfers whose outcome is known
    committed: dict[int, str] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)  # transfers of unknown outcome
    writers_named: bool = True
    end: float = 0.0  # every operation that returned did so before this time

    def latest(self, account: str) -> tuple[int, int, str]:
        """The account's last version at the end of the run: (version, balance, writer)."""
        balance, writer = self.versions[account][-1]
        return len(self.versions[account]), balance, writer

    def seen(self, account: str, version: int) -> dict[str, Any]:
        balance, writer = self.versions[account][version - 1]
        entry: dict[str, Any] = {"balance": balance, "version": version}
        if self.writers_named:
            entry["writer"] = writer
        return entry

    def touched_by_pending(self) -> set[str]:
        return {
            account
            for i in self.pending
            for account in (self.history[i].input["from"], self.history[i].input["to"])
        }


KINDS = ("transfer", "transfer", "transfer unknown", "read", "read", "read lost", "snapshot")
STEP = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 12),  # how long before its linearization point the operation is invoked
    st.integers(0, 12),  # how long after it the operation returns
    st.integers(0, 3),  # the account read, or the transfer's source
    st.integers(1, 3),  # the transfer's target: this many accounts after its source
    st.integers(1, 200),  # the amount
    st.integers(0, 7),  # bits: the client chose the id; previous writers answered; committed
)
"""One operation of a generated history."""


@st.composite
def runs(draw: st.DrawFn) -> Run:
    """A history a correct ledger could produce (see the module docstring)."""
    count = draw(st.integers(2, 4))
    names = [f"a{i}" for i in range(count)]
    initial = draw(st.lists(st.integers(0, 300), min_size=count, max_size=count))
    history = [
        Operation("setup", {"op": "create", "account": a, "balance": b}, {"version": 1}, *CREATED)
        for a, b in zip(names, initial, strict=True)
    ]
    versions = {a: [(b, "create")] for a, b in zip(names, initial, strict=True)}
    run = Run(history, names, versions, writers_named=draw(st.booleans()))
    steps = draw(st.lists(STEP, min_size=1, max_size=16))
    for step, (kind, before, after, first, offset, amount, bits) in enumerate(steps):
        point = 4.0 * (step + 1)
        call, returned = point - before, point + after
        account, target = names[first % count], names[(first + offset) % count]
        output: dict[str, Any] | None
        if kind.startswith("transfer") and account != target:
            ident = f"t{step}"
            input: dict[str, Any] = {"op": "transfer", "from": account, "to": target}
            input["amount"] = amount
            if bits & 1:
                input["id"] = ident  # chosen by the client, as the lab does
            unknown = kind.endswith("unknown")
            commits = versions[account][-1][0] >= amount and (not unknown or bool(bits & 4))
            if commits:
                for side, delta in ((account, -amount), (target, amount)):
                    versions[side].append((versions[side][-1][0] + delta, ident))
            if unknown:
                output = None
                run.pending.add(len(history))
            elif commits:
                output = {
                    "id": ident,
                    "from_version": len(versions[account]),
                    "to_version": len(versions[target]),
                }
                if bits & 2:
                    output["from_previous_writer"] = versions[account][-2][1]
                    output["to_previous_writer"] = versions[target][-2][1]
                run.committed[len(history)] = ident
            else:
                output = {"rejected": "insufficient_funds"}
        elif kind == "snapshot":
            input = {"op": "snapshot", "accounts": names}
            output = {"accounts": {a: run.seen(a, len(versions[a])) for a in names}}
        else:
            input = {"op": "read", "account": account}
            output = None if kind == "read lost" else run.seen(account, len(versions[account]))
        history.append(
            Operation(step % 5, input, output, call, None if output is None else returned)
        )
    run.end = 4.0 * (len(steps) + 5)
    return run


INJECTED = settings(max_examples=30)
"""Examples per injected anomaly."""


def after_everything(run: Run, input: dict[str, Any], output: dict[str, Any]) -> Operation:
    """An operation invoked after every operation of the run that returned."""
    run.end += 2
    return Operation("late", input, output, run.end - 1, run.end)


def classes(history: list[Operation]) -> set[str]:
    return set(check_ledger(history).counts)


@settings(max_examples=120)
@given(runs())
def test_a_correct_ledger_s_histories_are_never_rejected(run: Run) -> None:
    """Random concurrency, unknown outcomes, named or inferred writers: no anomaly, ever."""
    result = check_ledger(run.history)
    assert result.counts == {}, "\n".join(result.lines())
    assert result.verdict is not LedgerVerdict.NOT_STRICTLY_SERIALIZABLE


@INJECTED
@given(runs(), st.integers(0, 5))
def test_a_read_of_a_version_never_written_is_a_garbage_read(run: Run, beyond: int) -> None:
    """A version above what every transfer of the history touching the account could have
    written (committed or of unknown outcome) is garbage, whatever else happened."""
    account = run.accounts[0]
    writes = sum(
        1
        for op in run.history
        if op.input["op"] == "transfer"
        and account in (op.input["from"], op.input["to"])
        and not (op.output or {}).get("rejected")
    )
    version = 1 + writes + 2 + beyond
    read = after_everything(
        run, {"op": "read", "account": account}, {"balance": 7, "version": version}
    )
    assert classes([*run.history, read]) == {"garbage-read"}


@INJECTED
@given(runs(), st.data())
def test_two_transfers_reporting_one_version_are_a_lost_update(
    run: Run, data: st.DataObject
) -> None:
    """A later transfer that reports the same version of its source as a committed one: one
    debit overwrote the other (duplicate-version)."""
    assume(run.committed)
    earlier = run.history[data.draw(st.sampled_from(sorted(run.committed)))]
    source = earlier.input["from"]
    target = data.draw(st.sampled_from([a for a in run.accounts if a != source]))
    to_version = run.latest(target)[0] + 1
    ident = "lost"
    transfer = after_everything(
        run,
        {"op": "transfer", "from": source, "to": target, "amount": 1, "id": ident},
        {"id": ident, "from_version": earlier.output["from_version"], "to_version": to_version},
    )
    assert classes([*run.history, transfer]) == {"duplicate-version"}


@INJECTED
@given(runs(), st.data())
def test_a_transfer_applied_twice_is_a_garbage_read(run: Run, data: st.DataObject) -> None:
    """A read naming a committed transfer as the writer of a version after the one it
    reported: the transfer was applied a second time, which no operation of the history did."""
    assume(run.committed)
    position = data.draw(st.sampled_from(sorted(run.committed)))
    transfer = run.history[position]
    source, amount = transfer.input["from"], transfer.input["amount"]
    version, balance, _ = run.latest(source)
    twice = {"balance": balance - amount, "version": version + 1, "writer": run.committed[position]}
    read = after_everything(run, {"op": "read", "account": source}, twice)
    assert classes([*run.history, read]) == {"garbage-read"}


@INJECTED
@given(runs(), st.data(), st.integers(1, 50))
def test_a_balance_that_does_not_follow_from_the_writes_is_a_wrong_balance(
    run: Run, data: st.DataObject, error: int
) -> None:
    """A read of an account's first version, right after its creation, with a balance other
    than the one it was created with."""
    account = data.draw(st.sampled_from(run.accounts))
    created = run.versions[account][0][0]
    seen = {"balance": created + data.draw(st.sampled_from([error, -error])), "version": 1}
    read = Operation("early", {"op": "read", "account": account}, seen, *EARLY)
    assert classes([read, *run.history]) == {"wrong-balance"}


@INJECTED
@given(runs(), st.data(), st.integers(1, 50))
def test_two_reads_of_one_version_with_different_balances_are_a_wrong_balance(
    run: Run, data: st.DataObject, error: int
) -> None:
    """A copy of a read (same interval, version and writer) that saw another balance."""
    reads = [i for i, op in enumerate(run.history) if op.input["op"] == "read" and not op.pending]
    assume(reads)
    original = run.history[data.draw(st.sampled_from(reads))]
    other = {**original.output, "balance": original.output["balance"] + error}
    copy = Operation("copy", original.input, other, original.call, original.return_time)
    assert classes([*run.history, copy]) == {"wrong-balance"}


@INJECTED
@given(runs(), st.data(), st.integers(0, 50))
def test_a_transfer_that_overdraws_its_source_is_a_wrong_balance(
    run: Run, data: st.DataObject, more: int
) -> None:
    """After a snapshot that shows every balance, a committed transfer of more than its
    source held leaves it negative."""
    source, target = data.draw(st.permutations(run.accounts))[:2]
    snapshot = after_everything(
        run,
        {"op": "snapshot", "accounts": run.accounts},
        {"accounts": {a: run.seen(a, run.latest(a)[0]) for a in run.accounts}},
    )
    amount = run.latest(source)[1] + 1 + more
    ident = "overdraft"
    transfer = after_everything(
        run,
        {"op": "transfer", "from": source, "to": target, "amount": amount, "id": ident},
        {
            "id": ident,
            "from_version": run.latest(source)[0] + 1,
            "to_version": run.latest(target)[0] + 1,
        },
    )
    assert classes([*run.history, snapshot, transfer]) == {"wrong-balance"}


@INJECTED
@given(runs(), st.data())
def test_a_refusal_while_the_source_held_enough_is_a_wrong_rejection(
    run: Run, data: st.DataObject
) -> None:
    """A transfer refused for insufficient funds from an account that no transfer of unknown
    outcome touched, and that held at least the amount at the end of the run."""
    certain = [a for a in run.accounts if a not in run.touched_by_pending()]
    assume(certain)
    source = data.draw(st.sampled_from(certain))
    target = data.draw(st.sampled_from([a for a in run.accounts if a != source]))
    held = run.latest(source)[1]
    assume(held >= 1)
    amount = data.draw(st.integers(1, held))
    refused = after_everything(
        run,
        {"op": "transfer", "from": source, "to": target, "amount": amount},
        {"rejected": "insufficient_funds"},
    )
    assert classes([*run.history, refused]) == {"wrong-rejection"}


@INJECTED
@given(runs(), st.data())
def test_a_read_of_a_refused_transfer_s_effect_is_an_aborted_read(
    run: Run, data: st.DataObject
) -> None:
    """A transfer refused (for lack of funds, rightly) whose effect a later read sees: G1a."""
    source, target = data.draw(st.permutations(run.accounts))[:2]
    version, balance, _ = run.latest(source)
    amount = balance + 1
    refused = after_everything(
        run,
        {"op": "transfer", "from": source, "to": target, "amount": amount, "id": "refused"},
        {"rejected": "insufficient_funds"},
    )
    effect = {"balance": balance - amount, "version": version + 1, "writer": "refused"}
    read = after_everything(run, {"op": "read", "account": source}, effect)
    assert classes([*run.history, refused, read]) == {"G1a"}


@INJECTED
@given(runs(), st.data())
def test_a_read_after_a_transfer_returned_that_misses_it_is_g_single_realtime(
    run: Run, data: st.DataObject
) -> None:
    """A stale read: invoked after a committed transfer returned, it sees the version of the
    transfer's account just before the transfer's."""
    assume(run.committed)
    transfer = run.history[data.draw(st.sampled_from(sorted(run.committed)))]
    side = data.draw(st.sampled_from(["from", "to"]))
    account, version = transfer.input[side], transfer.output[f"{side}_version"]
    read = after_everything(run, {"op": "read", "account": account}, run.seen(account, version - 1))
    assert classes([*run.history, read]) == {"G-single-realtime"}


@INJECTED
@given(runs(), st.data())
def test_a_not_found_after_the_creation_returned_is_g_single_realtime(
    run: Run, data: st.DataObject
) -> None:
    """A read invoked after the account's creation returned that says it does not exist."""
    account = data.draw(st.sampled_from(run.accounts))
    read = after_everything(run, {"op": "read", "account": account}, {"found": False})
    assert classes([*run.history, read]) == {"G-single-realtime"}


@INJECTED
@given(runs(), st.data())
def test_a_read_of_a_write_not_yet_invoked_is_g1c_realtime(run: Run, data: st.DataObject) -> None:
    """A read that returned before a committed transfer was invoked, yet saw its write."""
    assume(run.committed)
    position = data.draw(st.sampled_from(sorted(run.committed)))
    transfer = run.history[position]
    side = data.draw(st.sampled_from(["from", "to"]))
    account, version = transfer.input[side], transfer.output[f"{side}_version"]
    seen = {**run.seen(account, version), "writer": run.committed[position]}
    read = Operation("early", {"op": "read", "account": account}, seen, *EARLY)
    assert classes([read, *run.history]) == {"G1c-realtime"}
