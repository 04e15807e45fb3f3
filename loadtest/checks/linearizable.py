"""The run as a ledger history for the linearizability checker.

Included: account creations, transfers (committed ones with their new versions, refused ones
as "insufficient funds" observations, unknown ones as pending), strong balance reads and
strong snapshots. Stale and cached reads are left out on purpose: they are allowed to be
stale; :mod:`loadtest.checks.staleness` measures them instead. Failed reads are left out (a
read that failed changed nothing).
"""

from __future__ import annotations

from loadtest.linearizability import LEDGER, CheckResult, Operation, check
from loadtest.records import OK, REJECTED, UNKNOWN, Record
from loadtest.runner import RunResult


def _operation(record: Record) -> Operation | None:
    pending = record.outcome == UNKNOWN
    returned = None if pending else record.returned
    if record.kind == "create" and record.outcome == OK:
        input = {"op": "create", "account": record.account, "balance": record.balance}
        return Operation(record.seq, input, {"version": record.version}, record.invoked, returned)
    if record.kind == "transfer" and record.outcome in (OK, REJECTED, UNKNOWN):
        input = {
            "op": "transfer",
            "from": record.account,
            "to": record.other,
            "amount": record.amount,
        }
        output: dict[str, object] | None
        if record.outcome == OK:
            output = {"from_version": record.from_version, "to_version": record.to_version}
        elif record.outcome == REJECTED:
            output = {"rejected": "insufficient_funds"}
        else:
            output = None
        return Operation(record.seq, input, output, record.invoked, returned)
    if record.kind == "strong" and record.outcome == OK:
        input = {"op": "read", "account": record.account}
        output = {"balance": record.balance, "version": record.version}
        return Operation(record.seq, input, output, record.invoked, returned)
    if record.kind == "snapshot" and record.outcome == OK:
        input = {"op": "snapshot", "accounts": sorted(record.snapshot)}
        accounts = {a: {"balance": b, "version": v} for a, (b, v) in record.snapshot.items()}
        return Operation(record.seq, input, {"accounts": accounts}, record.invoked, returned)
    return None


def ledger_history(result: RunResult) -> list[Operation]:
    operations = (_operation(r) for r in [*result.setup, *result.records])
    return [op for op in operations if op is not None]


def check_linearizable(result: RunResult, timeout: float = 60.0) -> CheckResult:
    return check(LEDGER, ledger_history(result), timeout=timeout)
