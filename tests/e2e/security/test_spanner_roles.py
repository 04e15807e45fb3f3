"""Spanner database roles against the emulator, as far as it goes, and the rest recorded.

The emulator has no fine-grained access control: it refuses ``CREATE ROLE`` and accepts any
``database_role`` on a session without enforcing it (both shown here, so the docs can say
so). What it cannot enforce is checked by recording: each service's own code runs against
the emulator through a database wrapper that notes every table it reads or writes and how,
and every privilege used must be one the service's role is granted in the topology's DDL.
A grant that is too narrow would break that service in the cloud (PERMISSION_DENIED); one
that is too wide is what tests/unit/security/test_least_privilege.py pins down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud.spanner_v1 import COMMIT_TIMESTAMP

from caplab.core.clients import ClientFactory
from caplab.core.environment import GcpSettings, config_from
from caplab.core.topology import TOPOLOGY
from services.notifier.webhooks import WebhookStore
from services.relay.lease import Lease
from services.relay.outbox import OutboxRelay
from services.relay.pacing import Backoff, PollInterval
from services.relay.reads import Reads
from services.shared.events import TRANSFER_COMMITTED, TransferEvent
from services.shared.transactions import TransactionRunner, TransactionSettings
from tests.fixtures.bank import BankControl
from tests.fixtures.security import granted

NOWHERE = "http://127.0.0.1:9"
Used = set[tuple[str, str]]
"""(privilege, table) pairs a service used."""
_TABLES_IN_SQL = re.compile(r"\b(?:FROM|JOIN)\s+(?!UNNEST\b)(\w+)", re.IGNORECASE)
_MUTATIONS = {
    "insert": ("INSERT",),
    "update": ("UPDATE",),
    "insert_or_update": ("INSERT", "UPDATE"),
    "replace": ("INSERT", "UPDATE", "DELETE"),
    "delete": ("DELETE",),
}


_DML = re.compile(r"^\s*(INSERT(?:\s+INTO)?|UPDATE|DELETE(?:\s+FROM)?)\s+(\w+)", re.IGNORECASE)


def sql_privileges(sql: str) -> Used:
    """The (privilege, table) pairs a query or DML statement needs: its statement's own
    privilege on its target, SELECT on every table it reads (FROM/JOIN, WHERE clauses)."""
    used: Used = {("SELECT", table) for table in _TABLES_IN_SQL.findall(sql)}
    dml = _DML.match(sql)
    if dml:
        privilege = dml.group(1).split()[0].upper()
        used.add((privilege, dml.group(2)))
        if privilege != "INSERT":
            used.add(("SELECT", dml.group(2)))  # a WHERE clause reads the rows it changes
    return used


class RecordingReads(Reads):
    """The relay's strong reads, with each query's tables noted."""

    def __init__(self, database: Any, timeout: float, used: Used) -> None:
        super().__init__(database, timeout)
        self.used = used

    def query(self, sql: str, params: dict[str, str | int] | None = None) -> list[list[Any]]:
        self.used.update(sql_privileges(sql))
        return super().query(sql, params)


class Recording:
    """Wraps a transaction or snapshot: notes each read, query and mutation's table."""

    def __init__(self, inner: Any, used: Used) -> None:
        self._inner = inner
        self._used = used

    def read(self, table: str, *args: Any, **kwargs: Any) -> Any:
        self._used.add(("SELECT", table))
        return self._inner.read(table, *args, **kwargs)

    def execute_sql(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._used.update(("SELECT", table) for table in _TABLES_IN_SQL.findall(sql))
        return self._inner.execute_sql(sql, *args, **kwargs)

    def execute_update(self, dml: str, *args: Any, **kwargs: Any) -> Any:
        self._used.update(sql_privileges(dml))
        return self._inner.execute_update(dml, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in _MUTATIONS:
            return attribute

        def mutate(table: str, *args: Any, **kwargs: Any) -> Any:
            self._used.update((privilege, table) for privilege in _MUTATIONS[name])
            return attribute(table, *args, **kwargs)

        return mutate


class RecordingDatabase:
    def __init__(self, inner: Any, used: Used) -> None:
        self._inner = inner
        self._used = used

    def run_in_transaction(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        def recorded(transaction: Any, *inner_args: Any, **inner_kwargs: Any) -> Any:
            return function(Recording(transaction, self._used), *inner_args, **inner_kwargs)

        return self._inner.run_in_transaction(recorded, *args, **kwargs)

    @contextlib.contextmanager
    def snapshot(self, **kwargs: Any) -> Iterator[Recording]:
        with self._inner.snapshot(**kwargs) as snapshot:
            yield Recording(snapshot, self._used)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RecordingClients(ClientFactory):
    """The client factory with both Spanner database handles recorded."""

    def __init__(self, settings: GcpSettings, used: Used) -> None:
        super().__init__(settings)
        self.used = used

    @property
    def spanner_database(self) -> Any:  # type: ignore[override]
        return RecordingDatabase(super().spanner_database, self.used)

    @property
    def spanner_replica_database(self) -> Any:  # type: ignore[override]
        return RecordingDatabase(super().spanner_replica_database, self.used)


def unpublished(database: Any) -> None:
    """One outbox row waiting for the relay, as a transfer leaves it."""
    event_id = uuid.uuid4().hex
    event = TransferEvent(event_id=event_id, transfer_id=uuid.uuid4().hex, from_account="a",
                          to_account="b", amount_cents=1, from_version=1, to_version=1)  # fmt: skip
    database.run_in_transaction(
        lambda transaction: transaction.insert(
            "Outbox",
            ("EventId", "EventType", "OrderingKey", "Payload", "CommittedAt"),
            [(event_id, TRANSFER_COMMITTED, "a", event.to_json().decode(), COMMIT_TIMESTAMP)],
        )
    )


def allowed(role: str) -> Used:
    return {(p, table) for table, privileges in granted()[role].items() for p in privileges}


@pytest.fixture
def gcp(emulator_env: dict[str, str]) -> GcpSettings:
    return GcpSettings.from_config(config_from(emulator_env))


def runner_for(database: Any) -> TransactionRunner:
    return TransactionRunner(database, timedelta(seconds=10), TransactionSettings())


def test_the_emulator_has_no_fine_grained_access_control(gcp: GcpSettings) -> None:
    """``CREATE ROLE`` is refused; a session with a role that does not exist still reads
    and writes (so locally the roles are declared and checked here, not enforced)."""
    instance = ClientFactory(gcp).spanner.instance(gcp.spanner_instance)
    with pytest.raises(exceptions.GoogleAPICallError):
        instance.database(gcp.spanner_database).update_ddl(
            [TOPOLOGY.spanner.access_control()[0]]
        ).result(timeout=60)
    unenforced = instance.database(gcp.spanner_database, database_role="no_such_role")
    store = WebhookStore(runner_for(unenforced))
    account = f"acct-{uuid.uuid4().hex[:12]}"
    store.register(account, "http://127.0.0.1:1/")
    assert store.lookup([account]) == {account: "http://127.0.0.1:1/"}
    store.unregister(account)


def test_the_ledger_uses_only_what_its_role_grants(gcp: GcpSettings, bank: BankControl) -> None:
    """Accounts, transfers (and their replay), every read mode, snapshots, transfer lookups,
    and a payout from its hold through the bank call."""
    from services.ledger.app import create_app
    from services.ledger.settings import LedgerSettings

    used: Used = set()
    # Payout tasks go to a URL nobody serves: the test calls the task endpoint itself.
    settings = LedgerSettings.from_environ(
        {**os.environ, "CAPLAB_BANK_URL": bank.url, "CAPLAB_LEDGER_URL": NOWHERE}
    )
    app = create_app(settings, RecordingClients(settings.gcp, used))
    payer, payee = (f"acct-{uuid.uuid4().hex[:12]}" for _ in range(2))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with_client = httpx.AsyncClient(transport=transport, base_url=NOWHERE)

    async def drive() -> None:
        async with with_client as http:
            for account in (payer, payee):
                body = {"id": account, "owner": "o", "balance_cents": 1000}
                assert (await http.post("/v1/accounts", json=body)).status_code == 201
            transfer = {"from": payer, "to": payee, "amount_cents": 5}
            key = {"Idempotency-Key": uuid.uuid4().hex}
            first = await http.post("/v1/transfers", json=transfer, headers=key)
            assert first.status_code == 201
            replay = await http.post("/v1/transfers", json=transfer, headers=key)
            assert replay.headers["Idempotent-Replayed"] == "true"
            await http.get(f"/v1/transfers/{first.json()['transfer_id']}")
            for consistency in ("strong", "exact", "bounded", "cached"):
                params = {"consistency": consistency, "staleness": "1s"}
                await http.get(f"/v1/accounts/{payer}", params=params)
            await http.get("/v1/snapshot", params={"accounts": f"{payer},{payee}"})
            payout = await http.post(
                "/v1/payouts",
                json={"account": payer, "amount_cents": 7},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert payout.status_code == 201, payout.text
            payout_id = payout.json()["payout_id"]
            await http.post(f"/tasks/payouts/{payout_id}")
            await http.get(f"/v1/payouts/{payout_id}")

    asyncio.run(drive())
    assert ("UPDATE", "Accounts") in used
    assert ("INSERT", "Outbox") in used
    assert used <= allowed("ledger"), used - allowed("ledger")


def test_the_relay_and_the_notifier_use_only_what_their_roles_grant(gcp: GcpSettings) -> None:
    """The relay polls and stamps the outbox; the notifier registers, looks up and removes
    a webhook."""
    unpublished(ClientFactory(gcp).spanner_database)
    relay_used: Used = set()
    clients = RecordingClients(gcp, relay_used)
    runner = runner_for(clients.spanner_database)
    reads = RecordingReads(ClientFactory(gcp).spanner_database, 5.0, relay_used)
    lease = Lease(runner, reads, "roles-test", 30.0, Backoff(0.05, 0.2),
                  name=f"roles-{uuid.uuid4().hex[:12]}")  # fmt: skip
    lease.step()
    epoch = lease.leader_epoch()
    assert epoch is not None
    relay = OutboxRelay(runner, reads, lease, clients.publisher,
                        gcp.topic_path(TOPOLOGY.topics[0]), poll=PollInterval(0.01, 0.01),
                        backoff=Backoff(0.05, 0.2), publish_timeout=30.0)  # fmt: skip
    published = 0
    while relay.relay_once(epoch):  # drain what earlier tests left, then stop
        published += 1
    reads.close()
    assert published >= 1
    assert {("SELECT", "Outbox"), ("UPDATE", "Outbox"), ("INSERT", "RelayLease")} <= relay_used
    assert relay_used <= allowed("relay"), relay_used - allowed("relay")

    notifier_used: Used = set()
    store = WebhookStore(runner_for(RecordingClients(gcp, notifier_used).spanner_database))
    account = f"acct-{uuid.uuid4().hex[:12]}"
    store.register(account, "http://127.0.0.1:1/")
    store.register(account, "http://127.0.0.1:2/")
    assert store.lookup([account]) == {account: "http://127.0.0.1:2/"}
    store.unregister(account)
    assert notifier_used == allowed("notifier")
