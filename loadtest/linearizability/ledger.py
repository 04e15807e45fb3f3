"""The ledger as a versioned register per account.

Each account is an object whose state is ``(balance_cents, version)``, or ``None`` before it
is created. Every change bumps the version by exactly one (the ledger's ``Accounts.Version``).
History operations, as ``caplab load`` records them (``output`` of a pending operation is
ignored)::

    {"op": "create",   "account": "a", "balance": 100}     -> {"version": 1}
    {"op": "read",     "account": "a"}                     -> {"balance": 90, "version": 2}
                                                              or {"found": false}
    {"op": "snapshot", "accounts": ["a", "b"]}             -> {"accounts": {"a": {"balance": 90,
                                                               "version": 2}, "b": {...}}}
    {"op": "transfer", "from": "a", "to": "b", "amount": 10}
                                        -> {"from_version": 2, "to_version": 5}
                                           or {"rejected": "insufficient_funds"}

How a transfer decomposes (so that checking account by account is sound): a transfer is one
atomic write on two objects. Its projection on ``from`` is "add -amount, the new version is
``from_version``" and on ``to`` "add +amount, the new version is ``to_version``"; a rejected
transfer projects on ``from`` as the read-only observation "balance < amount" and on ``to`` as
nothing. A strong snapshot projects as one read per account. Any linearization of the whole
history restricts to a linearization of every account, so a violation found on one account is
a real violation. The converse needs more than per-account checks: the transfers must also be
ordered the same way on both accounts they touch. The version numbers in the responses fix each
account's write order, and money conservation across accounts is checked by the bank invariant
on strong snapshots (loadtest.checks.bank); together they cover what per-account search cannot.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from loadtest.linearizability.history import Json, Operation
from loadtest.linearizability.model import Model


def _step(state: Hashable, input: Json, output: Json) -> tuple[bool, Hashable]:
    op = input["op"]
    if op == "create":
        if output is None:
            # A create of unknown outcome leaves the version unknown; caplab load only checks
            # accounts whose creation completed.
            return False, state
        return state is None, (input["balance"], output["version"])
    if op == "read":
        if output is None:
            return True, state
        if state is None:
            return output.get("found") is False, state
        return (output.get("balance"), output.get("version")) == state, state
    if state is None:
        return False, state
    assert isinstance(state, tuple)
    balance, version = state
    if op == "add":
        new_balance = balance + input["delta"]
        ok = new_balance >= 0 and (output is None or output["version"] == version + 1)
        return ok, (new_balance, version + 1)
    if op == "rejected_debit":
        return balance < input["amount"], state
    raise ValueError(f"ledger model: unknown operation {op!r}")


def _restricted(operation: Operation, input: Json, output: Json) -> Operation:
    return Operation(
        operation.client, input, output, operation.call, operation.return_time, operation.index
    )


def _partition(operation: Operation) -> Iterable[tuple[Hashable, Operation]]:
    input, output = operation.input, operation.output
    op = input["op"]
    if op in ("create", "read"):
        return [(input["account"], operation)]
    if op == "snapshot":
        accounts = (output or {}).get("accounts", {})
        return [
            (account, _restricted(operation, {"op": "read"}, accounts.get(account)))
            for account in input["accounts"]
        ]
    if op == "transfer":
        source, target, amount = input["from"], input["to"], input["amount"]
        if operation.pending or output is None:
            return [
                (source, _restricted(operation, {"op": "add", "delta": -amount}, None)),
                (target, _restricted(operation, {"op": "add", "delta": amount}, None)),
            ]
        if "rejected" in output:
            return [
                (source, _restricted(operation, {"op": "rejected_debit", "amount": amount}, {}))
            ]
        return [
            (
                source,
                _restricted(
                    operation, {"op": "add", "delta": -amount}, {"version": output["from_version"]}
                ),
            ),
            (
                target,
                _restricted(
                    operation, {"op": "add", "delta": amount}, {"version": output["to_version"]}
                ),
            ),
        ]
    raise ValueError(f"ledger model: unknown operation {op!r}")


def _describe(input: Json, output: Json) -> str:
    op = input["op"]
    if op == "create":
        return f"create balance={input['balance']}" + (
            "" if output is None else f" → v{output['version']}"
        )
    if op == "read":
        if output is None:
            return "read → ?"
        if output.get("found") is False:
            return "read → not found"
        return f"read → balance={output.get('balance')} v{output.get('version')}"
    if op == "add":
        return f"add {input['delta']:+d}" + (
            " → ?" if output is None else f" → v{output['version']}"
        )
    if op == "rejected_debit":
        return f"debit {input['amount']} rejected (insufficient funds)"
    return f"{op} {input}"


def _describe_state(state: Hashable) -> str:
    if state is None:
        return "no account"
    assert isinstance(state, tuple)
    return f"balance={state[0]} v{state[1]}"


LEDGER = Model(
    name="ledger",
    init=lambda: None,
    step=_step,
    partition=_partition,
    read_only=lambda input, output: input["op"] in ("read", "rejected_debit"),
    describe_operation=_describe,
    describe_state=_describe_state,
)
