"""The shared transaction runner's slots queue read-write transactions instead of letting the
Spanner emulator abort them against each other."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from google.api_core.exceptions import DeadlineExceeded

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from services.shared.transactions import TransactionRunner, TransactionSettings


def _runner(slots: int, deadline: float) -> TransactionRunner:
    from google.cloud import spanner

    database = (
        spanner.Client(project=LOCAL_PROJECT)
        .instance(TOPOLOGY.spanner.instance)
        .database(TOPOLOGY.spanner.database)
    )
    return TransactionRunner(
        database,
        timedelta(seconds=deadline),
        TransactionSettings(abort_retry_delay=timedelta(milliseconds=10), max_concurrent=slots),
    )


def test_a_transaction_waits_for_a_slot_and_gives_up_at_the_deadline(
    emulator_env: dict[str, str],
) -> None:
    """With every slot taken, a transaction waits; past the deadline it fails with
    DeadlineExceeded (services answer 503 + Retry-After) and never reaches Spanner."""
    runner = _runner(slots=1, deadline=0.2)
    reached: list[bool] = []
    slots = runner._slots
    assert slots is not None
    slots.acquire()
    try:
        with pytest.raises(DeadlineExceeded):
            runner.run(lambda transaction: reached.append(True))
    finally:
        slots.release()
    assert reached == []
    selected = runner.run(lambda transaction: list(transaction.execute_sql("SELECT 1")))
    assert selected == [[1]]


def test_concurrent_transactions_all_commit_one_at_a_time(emulator_env: dict[str, str]) -> None:
    """Eight threads, one slot: every transaction commits, and never two at once."""
    runner = _runner(slots=1, deadline=30)
    inside = 0
    peak = 0
    lock = threading.Lock()
    results: list[str] = []

    def work(transaction: object) -> str:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        list(transaction.execute_sql("SELECT 1"))  # type: ignore[attr-defined]
        with lock:
            inside -= 1
        return "ok"

    threads = [threading.Thread(target=lambda: results.append(runner.run(work))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok"] * 8
    assert peak == 1
