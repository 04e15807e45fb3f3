"""The payout store's transactions against the Spanner emulator, raced from threads: each step
re-reads the payout inside its transaction, so racing steps have one effect."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from google.cloud import spanner

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from services.ledger.payouts.saga import PayoutState, PayoutStore
from services.shared.transactions import TransactionRunner, TransactionSettings
from tests.fixtures.fanout import eventually

START = 1_000
AMOUNT = 300


@pytest.fixture
def store(emulator_env: dict[str, str]) -> PayoutStore:
    database = (
        spanner.Client(project=LOCAL_PROJECT)
        .instance(TOPOLOGY.spanner.instance)
        .database(TOPOLOGY.spanner.database)
    )
    return PayoutStore(TransactionRunner(database, timedelta(seconds=30), TransactionSettings()))


def held_payout(store: PayoutStore) -> tuple[str, str]:
    """A new account with START cents and a payout of AMOUNT held on it: (account, payout)."""
    account = f"store-{uuid.uuid4().hex[:10]}"
    with store.database.batch() as batch:
        batch.insert(
            "Accounts",
            ("AccountId", "Owner", "BalanceCents", "Version", "CreatedAt", "UpdatedAt"),
            [(account, "store test", START, 1, spanner.COMMIT_TIMESTAMP,
              spanner.COMMIT_TIMESTAMP)],
        )  # fmt: skip
    payout_id, created = store.hold(uuid.uuid4().hex, "digest", account, AMOUNT)
    assert created
    return account, payout_id


def balance(store: PayoutStore, account: str) -> int:
    with store.database.snapshot() as snapshot:
        rows = list(snapshot.read("Accounts", ("BalanceCents",), spanner.KeySet(keys=[[account]])))
    return rows[0][0]


def race(*calls: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def test_racing_settle_and_compensate_end_the_payout_once(store: PayoutStore) -> None:
    """Two compensations and a settlement at once: one of them ends the payout; the balance is
    what that one implies (never credited twice, never credited after a settlement)."""
    account, payout_id = held_payout(store)
    results = race(
        lambda: store.compensate(payout_id, "race 1"),
        lambda: store.compensate(payout_id, "race 2"),
        lambda: store.settle(payout_id, "race 3"),
    )
    payout = store.read(payout_id)
    assert payout is not None
    assert set(results) == {payout.state}
    assert [s.event for s in payout.history].count(payout.state.value) == 1
    expected = START if payout.state is PayoutState.COMPENSATED else START - AMOUNT
    assert balance(store, account) == expected


def test_racing_attempts_begin_one_call_and_compensating_a_not_found_needs_no_new_attempt(
    store: PayoutStore,
) -> None:
    """Two deliveries begin an attempt at once: one gets attempt 1, the other nothing. A
    compensation decided on attempt 0 (before that attempt began) then does nothing."""
    account, payout_id = held_payout(store)
    attempts = race(
        lambda: store.begin_attempt(payout_id, 5), lambda: store.begin_attempt(payout_id, 5)
    )
    assert sorted(attempts, key=str) == [1, None]
    stale_decision = store.compensate(payout_id, "decided on attempt 0", attempts_seen=0)
    assert stale_decision is PayoutState.PAYING
    assert balance(store, account) == START - AMOUNT
    assert store.compensate(payout_id, "decided on attempt 1", attempts_seen=1) is (
        PayoutState.COMPENSATED
    )
    assert balance(store, account) == START


def test_two_sweepers_racing_on_a_stale_payout_requeue_it_once(store: PayoutStore) -> None:
    """Once the payout is stale, two sweepers requeue it at the same moment: one records the
    ``requeued`` step (whose number names the task), the other finds it fresh again."""
    account, payout_id = held_payout(store)
    stale_after = timedelta(seconds=2)
    eventually(lambda: payout_id in store.stale(stale_after, 1000) or None, timeout=30)
    steps = race(
        lambda: store.requeue(payout_id, stale_after), lambda: store.requeue(payout_id, stale_after)
    )
    assert sorted(steps, key=str) == [2, None]
    payout = store.read(payout_id)
    assert payout is not None
    assert [s.event for s in payout.history] == ["held", "requeued"]
    assert payout_id not in store.stale(stale_after, 1000)
    store.compensate(payout_id, "test over")
    assert balance(store, account) == START
