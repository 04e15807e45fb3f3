"""The run as a ledger history, checked for strict serializability.

Included: account creations, transfers (committed ones with their id and new versions, refused
ones as rejected, unknown ones with no answer), strong balance reads and strong snapshots,
each with the writer of every version it saw when the ledger reports it. A strong read or
snapshot that failed is included as an operation of unknown outcome: it changed nothing, but it
assessed nothing either, and the checker counts how much of the run it could assess (a run
where most strong operations failed is inconclusive, not a pass). Stale and cached reads are
left out on purpose: they are allowed to be stale; :mod:`loadtest.checks.staleness` measures
them instead.
"""

from __future__ import annotations

from loadtest.linearizability import LedgerResult, Operation, check_ledger
from loadtest.records import ERROR, OK, REJECTED, UNKNOWN, Record
from loadtest.runner import RunResult


def _seen(balance: int | None, version: int | None, writer: str) -> dict[str, object]:
    entry: dict[str, object] = {"balance": balance, "version": version}
    if writer:
        entry["writer"] = writer
    return entry


def _operation(record: Record) -> Operation | None:
    if not record.invoked and not record.returned:
        return None  # cancelled before it was sent
    failed = record.outcome not in (OK, REJECTED)
    returned = None if failed else record.returned
    if record.kind == "create":
        if record.outcome != OK:
            return None
        input = {"op": "create", "account": record.account, "balance": record.balance}
        return Operation(record.seq, input, {"version": record.version}, record.invoked, returned)
    if record.kind == "transfer":
        if record.outcome == ERROR:
            # A definite failure (4xx other than insufficient funds): nothing changed.
            output: dict[str, object] | None = {"rejected": record.error}
            returned = record.returned
        elif record.outcome == REJECTED:
            output = {"rejected": "insufficient_funds"}
        elif record.outcome == UNKNOWN:
            output = None
        else:
            output = {
                "id": record.transfer_id,
                "from_version": record.from_version,
                "to_version": record.to_version,
            }
            if record.from_previous_writer and record.to_previous_writer:
                output["from_previous_writer"] = record.from_previous_writer
                output["to_previous_writer"] = record.to_previous_writer
        input = {
            "op": "transfer",
            "from": record.account,
            "to": record.other,
            "amount": record.amount,
        }
        return Operation(record.seq, input, output, record.invoked, returned)
    if record.kind == "strong":
        input = {"op": "read", "account": record.account}
        seen = None if failed else _seen(record.balance, record.version, record.writer)
        return Operation(record.seq, input, seen, record.invoked, returned)
    if record.kind == "snapshot":
        accounts = sorted(record.snapshot) if not failed else []
        input = {"op": "snapshot", "accounts": accounts}
        output = None
        if not failed:
            writers = record.snapshot_writers
            output = {
                "accounts": {
                    a: _seen(b, v, writers.get(a, "")) for a, (b, v) in record.snapshot.items()
                }
            }
        return Operation(record.seq, input, output, record.invoked, returned)
    return None


def ledger_history(result: RunResult) -> list[Operation]:
    operations = (_operation(r) for r in [*result.setup, *result.records])
    return [op for op in operations if op is not None]


def check_serializable(result: RunResult) -> LedgerResult:
    return check_ledger(ledger_history(result))
