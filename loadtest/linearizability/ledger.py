"""The ledger's histories checked for strict serializability, in the spirit of Elle.

History operations, as ``caplab load`` records them (``output`` of an operation whose
``return`` is null is ignored: its outcome is unknown)::

    {"op": "create",   "account": "a", "balance": 100}     -> {"version": 1}
    {"op": "read",     "account": "a"}                     -> {"balance": 90, "version": 2,
                                                               "writer": "t1"}
                                                              or {"found": false}
    {"op": "snapshot", "accounts": ["a", "b"]}             -> {"accounts": {"a": {"balance": 90,
                                                               "version": 2, "writer": "t1"},
                                                               "b": {...}}}
    {"op": "transfer", "from": "a", "to": "b", "amount": 10}
                                        -> {"id": "t1", "from_version": 2, "to_version": 5,
                                            "from_previous_writer": "create",
                                            "to_previous_writer": "t0"}
                                           or {"rejected": "insufficient_funds"}

``writer`` names the operation that produced the version read: ``"create"`` for version 1,
else a transfer's ``id`` (from its response, or from its input when the client chose it) or
another writer of the ledger (a payout step). A transfer's ``*_previous_writer`` names the
writer of the version it replaced (``from_version - 1``, ``to_version - 1``): what the
transfer read. Both are optional: without them the writer of a version is inferred (the
transfer whose response claimed it; else the one transfer of unknown outcome that could have
produced it).

Why not search interleavings, as for a single register? A transfer is one atomic write on two
objects; linearizability is compositional only for single-object operations, so checking each
account alone misses every anomaly that needs both accounts to see (a read of one account
that sees a transfer while a later read of the other does not). Instead, as Elle does, the
checker infers the dependency graph from what the ledger reports — versions increase by one
per write, so each account's versions are its write order — and looks for cycles
(:mod:`loadtest.linearizability.cycles`):

- ``ww``: the writer of ``a@v`` precedes the writer of the next known version of ``a``;
- ``wr``: the writer of ``a@v`` precedes every read that saw ``a@v``;
- ``rw``: a read of ``a@v`` precedes the writer of the next known version of ``a``;
- ``rt``: an operation that returned precedes every operation invoked after.

A transfer reads what it overwrites, so its read dependency coincides with its ``ww`` edge:
only a read-only operation has a ``wr`` edge of its own, and its only way out is ``rw`` or
``rt``. A pure ``G1c`` cycle (``ww`` and ``wr`` only) therefore cannot form here; its
real-time form (a read that saw a write not yet invoked) can.

Operations of unknown outcome, soundly: a transfer whose version is observed is known to have
committed and takes its place in the graph; then it also wrote its other account, at a version
after every one already claimed by another writer, which gives ``ww`` and ``rw`` edges into it
even though that version was never seen. A transfer never observed may or may not have
committed: it gets no node, and every edge that skips the version it may have written is
the transitive closure of real edges, so no cycle can depend on it.

What a graph cannot show is checked directly: two writers of one version (``duplicate-version``,
a lost update); a version no operation of the history could have produced
(``garbage-read``); a read of a rejected transfer's effect (``G1a``, aborted read); a version
read as written by a transfer whose final version of that account is later (``G1b``,
intermediate read); balances that do not follow from the writes (each version's balance is the
previous one plus the writer's amount; never negative; two reads of a version agree:
``wrong-balance``); a refusal for insufficient funds although every balance the source could
have had meanwhile sufficed (``wrong-rejection``); and money conservation in every snapshot of
all the accounts (``conservation``).

A history in which too little could be assessed does not pass: fewer than half of the strong
operations (reads, snapshots, transfers) with a known outcome, or no multi-account snapshot
(nothing that could see a transfer half applied), is ``inconclusive``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from loadtest.linearizability.cycles import (
    RT,
    RW,
    WR,
    WW,
    Cycle,
    Graph,
    cyclic_components,
    find_cycle,
)
from loadtest.linearizability.history import Json, Operation

PROPERTY = "strict serializability"
_EXPLAINED = 10
"""Anomalies explained in full (every one is counted)."""


class LedgerVerdict(StrEnum):
    STRICTLY_SERIALIZABLE = "strictly serializable"
    NOT_STRICTLY_SERIALIZABLE = "not strictly serializable"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Anomaly:
    """One violation: its class, the operations (history positions) and why, in words."""

    kind: str
    operations: tuple[int, ...]
    explanation: tuple[str, ...]

    def to_json(self) -> dict[str, Json]:
        return {
            "anomaly": self.kind,
            "operations": list(self.operations),
            "explanation": list(self.explanation),
        }


@dataclass(frozen=True)
class LedgerResult:
    verdict: LedgerVerdict
    anomalies: tuple[Anomaly, ...]
    counts: dict[str, int]
    reasons: tuple[str, ...]
    operations: int
    accounts: int
    strong: int
    known: int
    snapshots: int
    seconds: float
    model: str = field(default="ledger")

    @property
    def passed(self) -> bool:
        return self.verdict is LedgerVerdict.STRICTLY_SERIALIZABLE

    @property
    def exit_status(self) -> int:
        return {
            LedgerVerdict.STRICTLY_SERIALIZABLE: 0,
            LedgerVerdict.NOT_STRICTLY_SERIALIZABLE: 2,
            LedgerVerdict.INCONCLUSIVE: 3,
        }[self.verdict]

    def headline(self) -> str:
        """The verdict naming the property: ``strictly serializable``, the anomaly classes
        found, or why the history is inconclusive."""
        if self.verdict is LedgerVerdict.NOT_STRICTLY_SERIALIZABLE:
            found = ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in sorted(self.counts.items()))
            return f"{self.verdict}: {found}"
        if self.verdict is LedgerVerdict.INCONCLUSIVE:
            return f"{self.verdict}: {'; '.join(self.reasons)}"
        return str(self.verdict)

    def coverage(self) -> str:
        return (
            f"{self.operations} operations, {self.accounts} accounts, {self.known}/{self.strong} "
            f"strong operations with a known outcome, {self.snapshots} multi-account snapshots, "
            f"checked in {self.seconds:.3f} s"
        )

    def lines(self) -> list[str]:
        out: list[str] = []
        for anomaly in self.anomalies:
            out += anomaly.explanation
        hidden = sum(self.counts.values()) - len(self.anomalies)
        if hidden > 0:
            out.append(f"… and {hidden} more anomalies (see the JSON output)")
        return out

    def to_json(self) -> dict[str, Json]:
        return {
            "model": self.model,
            "property": PROPERTY,
            "verdict": self.headline(),
            "holds": self.passed,
            "anomaly_counts": dict(self.counts),
            "anomalies": [a.to_json() for a in self.anomalies],
            "inconclusive_because": list(self.reasons),
            "operations": self.operations,
            "accounts": self.accounts,
            "strong_operations": self.strong,
            "known_outcome": self.known,
            "multi_account_snapshots": self.snapshots,
            "seconds": round(self.seconds, 6),
        }


# ---- the history, parsed ---------------------------------------------------------------


class _Observation(NamedTuple):
    reader: int
    balance: int | None
    writer: str | None


@dataclass
class _History:
    creates: dict[str, int] = field(default_factory=dict)
    committed: list[int] = field(default_factory=list)  # transfers with a known new version
    rejected: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # transfers of unknown outcome
    ids: dict[str, int] = field(default_factory=dict)  # transfer id -> position
    # account -> version -> observations (reads and snapshots that saw it)
    seen: dict[str, dict[int, list[_Observation]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    strong: int = 0
    known: int = 0
    snapshots: int = 0


def _transfer_id(op: Operation) -> str | None:
    ident = op.input.get("id")
    if ident is None and isinstance(op.output, dict) and not op.pending:
        ident = op.output.get("id")
    return None if ident is None else str(ident)


def _parse(ops: Sequence[Operation]) -> _History:
    h = _History()
    for i, op in enumerate(ops):
        input, output = op.input, None if op.pending else op.output
        kind = input["op"]
        if kind == "create":
            first = h.creates.get(input["account"])
            if first is None or (ops[first].pending and not op.pending):
                h.creates[input["account"]] = i
            continue
        if kind not in ("read", "snapshot", "transfer"):
            raise ValueError(f"ledger model: unknown operation {kind!r}")
        h.strong += 1
        if output is None:
            if kind == "transfer":
                h.pending.append(i)
                ident = _transfer_id(op)
                if ident is not None:
                    h.ids[ident] = i
            continue
        h.known += 1
        if kind == "transfer":
            ident = _transfer_id(op)
            if ident is not None:
                h.ids[ident] = i
            if "rejected" in output:
                h.rejected.append(i)
                continue
            h.committed.append(i)
            for side in ("from", "to"):
                previous = output.get(f"{side}_previous_writer")
                if previous is not None:
                    version = int(output[f"{side}_version"]) - 1
                    account = input[side]
                    h.seen[account][version].append(_Observation(i, None, str(previous)))
        elif kind == "read":
            _observe(h.seen[input["account"]], i, output)
        else:
            accounts = output["accounts"]
            if len(accounts) >= 2:
                h.snapshots += 1
            seen = h.seen
            for account in input["accounts"]:
                _observe(seen[account], i, accounts.get(account))
    return h


def _observe(versions: dict[int, list[_Observation]], reader: int, entry: Any) -> None:
    """Record that ``reader`` saw ``entry`` (balance, version, writer; or not found)."""
    if entry is None or entry.get("found") is False:
        versions[0].append(_Observation(reader, None, None))
        return
    writer = entry.get("writer")
    if writer is not None and not isinstance(writer, str):
        writer = str(writer)
    versions[int(entry["version"])].append(_Observation(reader, entry.get("balance"), writer))


# ---- the checker -----------------------------------------------------------------------


class _Checker:
    def __init__(self, ops: Sequence[Operation]) -> None:
        self.ops = ops
        self.h = _parse(ops)
        self.anomalies: list[Anomaly] = []
        self.graph = Graph(len(ops))
        # Definite writers: account -> version -> node, and node -> account -> version.
        self.writer_of: dict[str, dict[int, int]] = defaultdict(dict)
        self.writes: dict[int, dict[str, int]] = defaultdict(dict)
        self.reads: dict[int, dict[str, int]] = defaultdict(dict)
        self.unknown_version: dict[int, set[str]] = defaultdict(set)  # committed, unseen write
        self.anonymous: dict[int, list[int]] = {}  # node -> candidate transfers
        self.synthetic: dict[int, str] = {}  # node -> account created outside the history
        self.garbage: set[tuple[str, int]] = set()

    # -- describing ------------------------------------------------------------------------

    def name(self, node: int) -> str:
        if node in self.anonymous:
            candidates = ", ".join(f"#{c}" for c in self.anonymous[node])
            return f"an unidentified transfer (one of {candidates})"
        if node in self.synthetic:
            return f"the creation of {self.synthetic[node]} (not in the history)"
        op = self.ops[node]
        kind = op.input["op"]
        ident = _transfer_id(op) if kind == "transfer" else None
        return f"#{node} ({kind}{'' if ident is None else ' ' + ident})"

    def describe(self, node: int) -> str:
        if node in self.anonymous or node in self.synthetic:
            return f"  {self.name(node)}"
        op = self.ops[node]
        input = op.input
        end = "…" if op.pending else f"{op.return_time:g}"
        when = f"[{op.call:g}, {end}]"
        kind = input["op"]
        output = None if op.pending else op.output
        if kind == "create":
            text = f"create {input['account']} with {input['balance']}"
        elif kind == "transfer":
            text = f"transfer {input['amount']} {input['from']}→{input['to']}"
            if output is None:
                text += " → outcome unknown"
            elif "rejected" in output:
                text += f" → rejected ({output['rejected']})"
            else:
                text += f" → {input['from']}@{output['from_version']} {input['to']}@"
                text += str(output["to_version"])
        elif kind == "read":
            text = f"read {input['account']} → " + _describe_seen(output)
        else:
            accounts = (output or {}).get("accounts", {})
            text = "snapshot → " + " ".join(
                f"{a}: {_describe_seen(accounts.get(a))}" for a in input["accounts"]
            )
        return f"  #{node:<5} client {op.client!s:>6} {when:>20}  {text}"

    def explain_edge(self, source: int, target: int, kind: int) -> str:
        a, b = self.name(source), self.name(target)
        if kind == RT:
            s, t = self.ops[source], self.ops[target]
            return f"rt: {a} returned at {s.return_time:g}, before {b} was invoked at {t.call:g}"
        if kind == WW:
            for account, version in self.writes[source].items():
                later = self.writes[target].get(account)
                if later is not None and later > version:
                    return (
                        f"ww: {a} wrote {account}@{version}, {b} wrote the later {account}@{later}"
                    )
            for account in sorted(self.unknown_version[target] & self.writes[source].keys()):
                return (
                    f"ww: {a} wrote {account}@{self.writes[source][account]}; {b} committed "
                    f"(it was observed), so it also wrote {account}, at a later version"
                )
        if kind == WR:
            for account, version in self.reads[target].items():
                if self.writes[source].get(account) == version:
                    return f"wr: {b} read {account}@{version}, which {a} wrote"
        if kind == RW:
            for account, version in self.reads[source].items():
                later = self.writes[target].get(account)
                if later is not None and later > version:
                    return (
                        f"rw: {a} read {account}@{version}, and {b} wrote the later "
                        f"{account}@{later}"
                    )
                if account in self.unknown_version[target]:
                    return (
                        f"rw: {a} read {account}@{version}; {b} committed (it was observed), "
                        f"so it also wrote {account}, at a version after {version}"
                    )
        raise AssertionError(f"no reason for edge {source} → {target} ({kind})")

    def add(self, kind: str, nodes: Sequence[int], why: str, *extra: str) -> None:
        real = tuple(sorted({n for n in nodes if n < len(self.ops)}))
        lines = [f"{kind}: {why}", *(self.describe(n) for n in sorted(set(nodes))), *extra]
        self.anomalies.append(Anomaly(kind, real, tuple(lines)))

    # -- writers ---------------------------------------------------------------------------

    def claim(self, account: str, version: int, node: int, reason: str) -> None:
        """``node`` wrote ``account@version`` (known from ``reason``)."""
        other = self.writer_of[account].get(version)
        if other is not None and other != node:
            self.add(
                "duplicate-version",
                [other, node],
                f"{account}@{version} has two writers, {self.name(other)} and {self.name(node)} "
                f"({reason}): one update was lost",
            )
            return
        self.writer_of[account][version] = node
        self.writes[node][account] = version

    def known_writers(self) -> None:
        for account, node in self.h.creates.items():
            self.claim(account, 1, node, "its creation")
        for node in self.h.committed:
            op = self.ops[node]
            for side, account in (
                ("from_version", op.input["from"]),
                ("to_version", op.input["to"]),
            ):
                version = int(op.output[side])
                if version < 1:
                    self.add(
                        "garbage-read", [node], f"a transfer reported {account}@{version}, a "
                        "version no operation produces",
                    )  # fmt: skip
                else:
                    self.claim(account, version, node, "its response")

    def observed_writers(self) -> None:
        """Attribute every observed version to a writer: the one its readers name, the one
        that claimed it, or the one transfer of unknown outcome that could have written it."""
        groups: dict[tuple[str, ...], set[tuple[str, int]]] = defaultdict(set)
        for account, versions in self.h.seen.items():
            for version, observations in versions.items():
                if version == 0:
                    continue
                if version < 0:
                    self.add(
                        "garbage-read",
                        [o.reader for o in observations],
                        f"{account}@{version} was read: no operation produces such a version",
                    )
                    self.garbage.add((account, version))
                    continue
                named = {o.writer for o in observations if o.writer is not None}
                if len(named) > 1:
                    self.add(
                        "duplicate-version",
                        [o.reader for o in observations],
                        f"reads of {account}@{version} name different writers "
                        f"({', '.join(sorted(named))})",
                    )
                writer = min(named) if named else None
                self.resolve(account, version, writer, observations, groups)
        self.resolve_unknown(groups)

    def resolve(
        self,
        account: str,
        version: int,
        writer: str | None,
        observations: list[_Observation],
        groups: dict[tuple[str, ...], set[tuple[str, int]]],
    ) -> None:
        readers = [o.reader for o in observations]
        claimed = self.writer_of[account].get(version)
        if writer is None:
            if claimed is None:
                if version == 1:
                    self.synthetic_create(account)
                else:
                    groups[("", account, str(version))].add((account, version))
            return
        if writer == "create":
            if version != 1:
                self.garbage_read(account, version, readers, "names its creation, version 1")
            elif claimed is None:
                self.synthetic_create(account)
            return
        node = self.h.ids.get(writer)
        if node is None:
            if claimed is not None and _transfer_id(self.ops[claimed]) is not None:
                self.add(
                    "duplicate-version",
                    [claimed, *readers],
                    f"{account}@{version} is claimed by {self.name(claimed)} but read as "
                    f"written by {writer!r}",
                )
            elif claimed is None:
                groups[("id", writer)].add((account, version))
            return
        op = self.ops[node]
        if account not in (op.input["from"], op.input["to"]):
            self.garbage_read(account, version, readers, f"names {self.name(node)}")
            return
        if node in self.h.rejected:
            self.add(
                "G1a",
                [node, *readers],
                f"{account}@{version} was read as written by {self.name(node)}, which was "
                "rejected (aborted read)",
            )
            self.garbage.add((account, version))
            return
        final = self.writes[node].get(account)
        if final is not None and version < final:
            self.add(
                "G1b",
                [node, *readers],
                f"{account}@{version} was read as written by {self.name(node)}, whose final "
                f"version of {account} is {final} (intermediate read)",
            )
            self.garbage.add((account, version))
            return
        if final is not None and version > final:
            self.garbage_read(account, version, readers, f"names {self.name(node)}")
            return
        self.claim(account, version, node, f"read by {self.name(readers[0])}")

    def garbage_read(self, account: str, version: int, readers: list[int], why: str) -> None:
        self.add(
            "garbage-read",
            readers,
            f"{account}@{version} was read, but no operation of the history wrote it ({why})",
        )
        self.garbage.add((account, version))

    def synthetic_create(self, account: str) -> None:
        node = self.graph.add_node()
        self.synthetic[node] = account
        self.claim(account, 1, node, "version 1")

    def resolve_unknown(self, groups: dict[tuple[str, ...], set[tuple[str, int]]]) -> None:
        """Each group of observed versions with one unidentified writer: the transfers of
        unknown outcome that could have written all of them (touching each account, with the
        balance change the reads show). One candidate: it committed; none: garbage."""
        remaining = dict(groups)
        changed = True
        while changed and remaining:
            changed = False
            for key, seen in list(remaining.items()):
                candidates = self.candidates(seen)
                if len(candidates) > 1:
                    continue
                del remaining[key]
                changed = True
                if not candidates:
                    for account, version in sorted(seen):
                        readers = [o.reader for o in self.h.seen[account][version]]
                        self.garbage_read(
                            account, version, readers, "no transfer of unknown outcome fits"
                        )
                    continue
                (node,) = candidates
                for account, version in sorted(seen):
                    self.claim(account, version, node, "the only transfer that fits the reads")
        for seen in remaining.values():
            node = self.graph.add_node()
            self.anonymous[node] = self.candidates(seen)
            for account, version in sorted(seen):
                self.claim(account, version, node, "an unidentified transfer")

    def candidates(self, seen: set[tuple[str, int]]) -> list[int]:
        accounts = [account for account, _ in seen]
        if len(set(accounts)) < len(accounts):
            return []  # one transfer writes an account once
        fits = []
        for node in self.h.pending:
            written = self.writes.get(node, {})
            if any(account in written for account in accounts):
                continue  # a transfer writes an account once
            input = self.ops[node].input
            if not all(a in (input["from"], input["to"]) for a in accounts):
                continue
            if all(self.delta_fits(node, account, version) for account, version in seen):
                fits.append(node)
        return fits

    def delta_fits(self, node: int, account: str, version: int) -> bool:
        before = self.balance_seen(account, version - 1)
        after = self.balance_seen(account, version)
        if before is None or after is None:
            return True
        return after - before == _delta(self.ops[node].input, account)

    def balance_seen(self, account: str, version: int) -> int | None:
        if version == 1 and account in self.h.creates:
            return self.ops[self.h.creates[account]].input["balance"]
        for observation in self.h.seen.get(account, {}).get(version, ()):
            if observation.balance is not None:
                return observation.balance
        return None

    def committed_elsewhere(self) -> None:
        """A transfer of unknown outcome observed on one account also wrote the other."""
        for node in self.h.pending:
            written = self.writes.get(node)
            if not written:
                continue
            input = self.ops[node].input
            for account in (input["from"], input["to"]):
                if account not in written:
                    self.unknown_version[node].add(account)

    # -- checks a graph cannot make ----------------------------------------------------------

    def capacity(self) -> None:
        """No account has more versions than operations of the history that could write it."""
        writers: dict[str, int] = defaultdict(lambda: 1)
        for node in (*self.h.committed, *self.h.pending):
            input = self.ops[node].input
            writers[input["from"]] += 1
            writers[input["to"]] += 1
        for account, versions in self.h.seen.items():
            top = max(versions)
            if top > writers[account] and (account, top) not in self.garbage:
                self.garbage_read(
                    account,
                    top,
                    [o.reader for o in versions[top]],
                    f"at most {writers[account]} operations of the history write {account}",
                )

    def balances(self) -> dict[str, dict[int, int]]:
        """Each version's balance, from the reads, the creation and the writers' amounts;
        flags reads that disagree and versions whose balance does not follow."""
        known: dict[str, dict[int, int]] = defaultdict(dict)
        for account, versions in self.h.seen.items():
            for version, observations in versions.items():
                values = {o.balance for o in observations if o.balance is not None}
                if version <= 0 or (account, version) in self.garbage or not values:
                    continue
                if len(values) > 1:
                    self.add(
                        "wrong-balance",
                        [o.reader for o in observations],
                        f"reads of {account}@{version} disagree on its balance "
                        f"({', '.join(map(str, sorted(values)))})",
                    )
                known[account][version] = min(values)
        for account, node in self.h.creates.items():
            balance = self.ops[node].input["balance"]
            seen = known[account].get(1)
            if seen is not None and seen != balance:
                self.add(
                    "wrong-balance", [node], f"{account} was created with {balance} but "
                    f"{account}@1 was read with {seen}",
                )  # fmt: skip
            known[account][1] = balance
        for account, versions in self.writer_of.items():
            balances = known[account]
            for version in sorted(versions):
                node = versions[version]
                if version == 1 or node in self.anonymous:
                    continue
                before = balances.get(version - 1)
                if before is None:
                    continue
                expected = before + _delta(self.ops[node].input, account)
                seen = balances.get(version)
                if seen is None:
                    balances[version] = expected
                elif seen != expected:
                    self.add(
                        "wrong-balance",
                        [node, *self.readers(account, version)],
                        f"{account}@{version} holds {seen}, but {account}@{version - 1} held "
                        f"{before} and {self.name(node)} moved "
                        f"{_delta(self.ops[node].input, account):+d}",
                    )
                if balances[version] < 0:
                    self.add(
                        "wrong-balance",
                        [node],
                        f"{self.name(node)} left {account} at {balances[version]}: overdrawn",
                    )
        return known

    def readers(self, account: str, version: int) -> list[int]:
        return [o.reader for o in self.h.seen.get(account, {}).get(version, ())]

    def rejections(self, balances: dict[str, dict[int, int]]) -> None:
        """A refusal for insufficient funds needs a balance below the amount at some version
        its source could have had between its call and its return."""
        uncertain = set()  # accounts a write of unknown outcome may have changed unseen
        for pending in self.h.pending:
            uncertain |= {self.ops[pending].input["from"], self.ops[pending].input["to"]}
        for node in self.h.rejected:
            op = self.ops[node]
            if "insufficient" not in str(op.output["rejected"]):
                continue
            account, amount = op.input["from"], op.input["amount"]
            versions = self.writer_of.get(account, {})
            if not versions or account in uncertain:
                continue
            low, high = 1, max(versions)
            for version, writer in versions.items():
                if writer >= len(self.ops):
                    continue
                w = self.ops[writer]
                if w.return_time is not None and w.return_time < op.call:
                    low = max(low, version)
                if op.return_time is not None and w.call > op.return_time:
                    high = min(high, version - 1)
            span = range(low, high + 1)
            known = balances[account]
            if span and all(v in known and known[v] >= amount for v in span):
                self.add(
                    "wrong-rejection",
                    [node],
                    f"{self.name(node)} was refused for insufficient funds, but {account} "
                    f"held at least {amount} at every version it could have read "
                    f"({account}@{low}..{high})",
                )

    def conservation(self, balances: dict[str, dict[int, int]]) -> None:
        """A snapshot of every account adds up to the money created."""
        accounts = set(self.h.creates)
        if any(self.ops[n].pending for n in self.h.creates.values()):
            return
        total = sum(self.ops[n].input["balance"] for n in self.h.creates.values())
        for node, op in enumerate(self.ops):
            if (
                op.input["op"] != "snapshot"
                or op.pending
                or not accounts <= set(op.input["accounts"])
            ):
                continue  # fmt: skip
            entries = op.output["accounts"]
            values = [(entries.get(a) or {}).get("balance") for a in accounts]
            if any(v is None for v in values):
                continue
            seen = sum(v for v in values if v is not None)
            if seen != total:
                self.add(
                    "conservation",
                    [node],
                    f"a snapshot of all {len(accounts)} accounts adds up to {seen}, not the "
                    f"{total} created",
                )

    # -- the graph -------------------------------------------------------------------------

    def build_graph(self) -> None:
        """Per account (in name order, so explanations do not vary between runs), in version
        order: ww between consecutive writers, wr from a writer
        to its readers, rw from readers to the next writer; then real-time edges."""
        out, reads, garbage = self.graph.out, self.reads, self.garbage
        unknown_by_account: dict[str, list[int]] = defaultdict(list)
        for node, accounts_unknown in self.unknown_version.items():
            for account in accounts_unknown:
                unknown_by_account[account].append(node)
        for account in sorted(self.writer_of.keys() | self.h.seen.keys()):
            writers = self.writer_of.get(account, {})
            seen = self.h.seen.get(account, {})
            previous = -1
            waiting: list[int] = []
            for version in sorted(writers.keys() | seen.keys()):
                writer = writers.get(version, -1)
                if writer >= 0:
                    if previous >= 0:
                        out[previous].append(writer << 2 | WW)
                    for reader in waiting:
                        if reader != writer:
                            out[reader].append(writer << 2 | RW)
                    waiting = []
                    previous = writer
                observations = seen.get(version)
                if not observations or (account, version) in garbage:
                    continue
                for o in observations:
                    reader = o.reader
                    reads[reader][account] = version
                    if writer >= 0 and writer != reader:
                        out[writer].append(reader << 2 | WR)
                    waiting.append(reader)
            for node in unknown_by_account.get(account, ()):
                self.after_definite(account, node, writers, seen)
        self.graph.add_realtime(
            (i, op.call, op.return_time)
            for i, op in enumerate(self.ops)
            if i in self.writes or i in reads
        )

    def after_definite(
        self,
        account: str,
        node: int,
        writers: dict[int, int],
        seen: dict[int, list[_Observation]],
    ) -> None:
        """``node`` committed and wrote ``account`` at a version nobody saw: after every
        version before the first one not claimed by a definite other writer."""
        version = 1
        while version + 1 in writers and writers[version + 1] not in self.anonymous:
            version += 1
        writer = writers.get(version)
        if writer is None:
            return
        self.graph.edge(writer, node, WW)
        for o in seen.get(version, ()):
            if (account, version) not in self.garbage:
                self.graph.edge(o.reader, node, RW)

    def cycles(self) -> None:
        for component in cyclic_components(self.graph):
            cycle = find_cycle(self.graph, component)
            self.add_cycle(cycle)

    def add_cycle(self, cycle: Cycle) -> None:
        edges = [
            f"    {self.name(s)} → {self.name(t)}  {self.explain_edge(s, t, k)}"
            for s, t, k in cycle.edges()
        ]
        self.add(
            cycle.anomaly,
            list(cycle.nodes),
            f"a cycle of {len(cycle.nodes)} operations that no serial order can explain",
            "  each must precede the next:",
            *edges,
        )

    # -- all together ----------------------------------------------------------------------

    def run(self) -> None:
        self.known_writers()
        self.observed_writers()
        self.committed_elsewhere()
        self.capacity()
        balances = self.balances()
        self.rejections(balances)
        self.conservation(balances)
        self.build_graph()
        self.cycles()


def _delta(input: Json, account: str) -> int:
    return -input["amount"] if input["from"] == account else input["amount"]


def _describe_seen(output: Json) -> str:
    if output is None:
        return "?"
    if output.get("found") is False:
        return "not found"
    writer = output.get("writer")
    by = "" if writer is None else f" by {writer}"
    return f"{output.get('balance')} @{output.get('version')}{by}"


def check_ledger(operations: Sequence[Operation]) -> LedgerResult:
    """Whether a ledger history is strictly serializable: the anomalies found (each a proof),
    else strictly serializable, or inconclusive when too little could be assessed."""
    started = time.monotonic()
    checker = _Checker(operations)
    checker.run()
    h = checker.h
    counts: dict[str, int] = defaultdict(int)
    for anomaly in checker.anomalies:
        counts[anomaly.kind] += 1
    reasons: list[str] = []
    if h.known * 2 < h.strong:
        reasons.append(
            f"only {h.known} of {h.strong} strong operations have a known outcome (want half)"
        )
    if h.snapshots == 0:
        reasons.append(
            "no multi-account snapshot: nothing could see a transfer half applied at one instant"
        )
    if counts:
        verdict = LedgerVerdict.NOT_STRICTLY_SERIALIZABLE
    elif reasons:
        verdict = LedgerVerdict.INCONCLUSIVE
    else:
        verdict = LedgerVerdict.STRICTLY_SERIALIZABLE
    accounts = set(h.creates) | set(h.seen)
    return LedgerResult(
        verdict=verdict,
        anomalies=tuple(checker.anomalies[:_EXPLAINED]),
        counts=dict(counts),
        reasons=tuple(reasons) if not counts else (),
        operations=len(operations),
        accounts=len(accounts),
        strong=h.strong,
        known=h.known,
        snapshots=h.snapshots,
        seconds=time.monotonic() - started,
    )


def iter_accounts(op: Operation) -> Iterator[str]:
    """The accounts an operation touches (for drawing a history per account)."""
    input = op.input
    kind = input["op"]
    if kind in ("create", "read"):
        yield input["account"]
    elif kind == "snapshot":
        yield from input["accounts"]
    elif kind == "transfer":
        yield input["from"]
        yield input["to"]
