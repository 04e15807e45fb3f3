"""The payout saga through real processes: the ledger, the Cloud Tasks emulator delivering its
tasks (queue ``payouts``: retries after 1, 2, 4 s...), and the stand-in bank with faults. After
every test the ledger's invariant is checked in Spanner (``books``).

The ledgers here use a 300 ms bank timeout, a 1 s arrival window and 2 payment attempts
(``tests.fixtures.bank.PAYOUT_ENV``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from emulators.manager import free_port
from tests.fixtures.bank import PAYOUT_ENV, UNREACHABLE_TASKS, BankControl, Books
from tests.fixtures.fanout import eventually
from tests.fixtures.services import ServiceRunner

START = 10_000
AMOUNT = 2_500
QUEUE = TOPOLOGY.queue("payouts")


@pytest.fixture(scope="module")
def taskless_ledger(
    services: ServiceRunner, bank: BankControl
) -> Iterator[launcher.RunningService]:
    """A ledger that cannot reach Cloud Tasks: its payouts are held and wait for deliveries
    the test makes itself. Its bank timeout (5 s) outlasts the bank's 1 s delays."""
    environ = {
        "CAPLAB_BANK_URL": bank.url,
        **PAYOUT_ENV,
        "CAPLAB_BANK_TIMEOUT": "5s",
        "CAPLAB_BANK_ARRIVAL_WINDOW": "5s",
        "CLOUD_TASKS_EMULATOR_HOST": UNREACHABLE_TASKS,
    }
    with services.restartable("ledger", environ) as ledger:
        yield ledger


def create(ledger: str, account: str, amount: int = AMOUNT) -> dict[str, Any]:
    response = httpx.post(
        f"{ledger}/v1/payouts",
        json={"account": account, "amount_cents": amount},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def read(ledger: str, payout_id: str) -> dict[str, Any]:
    response = httpx.get(f"{ledger}/v1/payouts/{payout_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def ended(ledger: str, payout_id: str, timeout: float = 30) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        last.update(read(ledger, payout_id))
        return dict(last) if last["state"] in ("settled", "compensated") else None

    try:
        return eventually(probe, timeout=timeout, every=0.1)
    except BaseException:
        print("payout still open:", last)
        raise


def balance(ledger: str, account: str) -> int:
    response = httpx.get(f"{ledger}/v1/accounts/{account}", timeout=10)
    return response.json()["balance_cents"]


def last_writer(ledger: str, account: str) -> str:
    """The operation that wrote the account's current version."""
    response = httpx.get(f"{ledger}/v1/accounts/{account}", timeout=10)
    return response.json()["last_writer"]


def events(payout: dict[str, Any]) -> list[str]:
    return [step["event"] for step in payout["history"]]


def deliver(ledger: str, payout_id: str, retry_count: int = 0) -> httpx.Response:
    """One delivery of the payout's task, as Cloud Tasks makes it (no token: none is
    configured locally)."""
    headers = {"X-CloudTasks-TaskRetryCount": str(retry_count)}
    return httpx.post(
        f"{ledger}/tasks/payouts/{payout_id}", content=b"{}", headers=headers, timeout=30
    )


def test_late_success_then_409_settles_and_never_compensates(
    bank_ledger: launcher.RunningService, bank: BankControl, books: Books
) -> None:
    """The bank pays but answers after the ledger's timeout; its status query first says it
    never got the payment (lagging), so the saga sends it again, and the bank answers 409
    "exists". Neither the timeout nor the 409 compensates: the next status query says paid,
    and the payout settles. The bank executed one payment."""
    ledger = bank_ledger.url
    account = books.open(ledger, START)
    bank.faults(account, delay_seconds=1.0, conflict_on_retry=True, status_not_found_first=1)

    payout = ended(ledger, create(ledger, account)["payout_id"])

    assert payout["state"] == "settled"
    assert "compensated" not in events(payout)
    assert events(payout).count("bank_unknown") == 2
    assert any("409" in step["detail"] for step in payout["history"])
    assert bank.payment_requests(account) == [201, 409]
    assert bank.payments(account) == {payout["payout_id"]: "paid"}
    assert balance(ledger, account) == START - AMOUNT


def test_an_explicit_refusal_compensates(
    bank_ledger: launcher.RunningService, bank: BankControl, books: Books
) -> None:
    ledger = bank_ledger.url
    account = books.open(ledger, START)
    bank.faults(account, refuse="account closed")

    payout = ended(ledger, create(ledger, account)["payout_id"])

    assert payout["state"] == "compensated"
    assert events(payout) == ["held", "bank_call", "compensated"]
    assert "account closed" in payout["history"][-1]["detail"]
    assert balance(ledger, account) == START
    assert last_writer(ledger, account) == f"payout:{payout['payout_id']}:compensated"


def test_a_bank_down_for_every_attempt_then_never_received_compensates_exactly_once(
    bank_ledger: launcher.RunningService, bank: BankControl, books: Books
) -> None:
    """Both payment attempts answer 503 (unknown: no compensation); the status query then says
    the bank never received the payment, the attempts are spent and the last one is older
    than the arrival window: compensated, once. A late duplicate delivery changes nothing."""
    ledger = bank_ledger.url
    account = books.open(ledger, START)
    bank.faults(account, down=True)

    payout = ended(ledger, create(ledger, account)["payout_id"])

    assert payout["state"] == "compensated"
    assert events(payout).count("bank_call") == 2
    assert events(payout).count("compensated") == 1
    assert "never received" in payout["history"][-1]["detail"]
    assert bank.payment_requests(account) == [503, 503]
    assert bank.payments(account) == {}
    assert balance(ledger, account) == START

    replay = deliver(ledger, payout["payout_id"])
    assert (replay.status_code, replay.json()["state"]) == (200, "compensated")
    assert events(read(ledger, payout["payout_id"])).count("compensated") == 1
    assert balance(ledger, account) == START


@pytest.mark.parametrize("decision", ["paid", "refused"])
def test_two_concurrent_deliveries_of_one_task_have_one_effect(
    taskless_ledger: launcher.RunningService, bank: BankControl, books: Books, decision: str
) -> None:
    """Delivery A calls the bank, which decides at once and answers 1 s later. Delivery B
    arrives meanwhile, finds the call in flight, asks the bank's status and ends the payout;
    A's late answer then finds it ended. One settlement or one compensation, one payment.
    (This ledger cannot reach Cloud Tasks, so the only deliveries are these two.)"""
    ledger = taskless_ledger.url
    account = books.open(ledger, START)
    faults: dict[str, Any] = {"delay_seconds": 1.0}
    if decision == "refused":
        faults["refuse"] = "limit exceeded"
    bank.faults(account, **faults)
    payout_id = create(ledger, account)["payout_id"]
    assert events(read(ledger, payout_id)) == ["held", "task_not_created"]

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(deliver, ledger, payout_id)
        eventually(lambda: bank.payments(account) or None)
        second = pool.submit(deliver, ledger, payout_id)
        answers = [first.result(), second.result()]

    final = "settled" if decision == "paid" else "compensated"
    assert [(a.status_code, a.json()["state"]) for a in answers] == [(200, final)] * 2
    payout = read(ledger, payout_id)
    assert events(payout).count(final) == 1
    assert events(payout).count("bank_call") == 1
    assert bank.payments(account) == {payout_id: decision}
    assert balance(ledger, account) == (START - AMOUNT if decision == "paid" else START)


def test_a_payment_arriving_late_within_the_arrival_window_settles_not_refunds(
    taskless_ledger: launcher.RunningService, bank: BankControl, books: Books
) -> None:
    """Both attempts fail (bank down) and the status query says "never received", but the
    last attempt is younger than the arrival window (5 s here): the payout stays
    ``reconciling`` — whatever ``X-CloudTasks-TaskRetryCount`` claims (each delivery here
    says it is the queue's last). The delayed request then reaches the bank, which pays; the
    next delivery learns it and settles. Compensating on the first "never received" would
    have refunded a paid payout."""
    ledger = taskless_ledger.url
    account = books.open(ledger, START)
    bank.faults(account, down=True)
    payout_id = create(ledger, account)["payout_id"]
    last = QUEUE.retry.max_attempts - 1
    answers = [deliver(ledger, payout_id, retry_count=last) for _ in range(3)]

    assert [a.json()["state"] for a in answers] == ["reconciling"] * 3
    assert [a.status_code for a in answers] == [503] * 3
    payout = read(ledger, payout_id)
    assert events(payout)[-1] == "status_not_found"
    assert "waiting" in payout["history"][-1]["detail"]
    assert balance(ledger, account) == START - AMOUNT
    assert last_writer(ledger, account) == f"payout:{payout_id}:held"

    bank.faults(account)
    late = httpx.post(
        f"{bank.url}/payments",
        json={"payment_id": payout_id, "account": account, "amount_cents": AMOUNT},
        headers={"Idempotency-Key": payout_id},
        timeout=10,
    )
    assert late.status_code == 201
    assert (deliver(ledger, payout_id).json()["state"]) == "settled"
    assert "compensated" not in events(read(ledger, payout_id))
    assert balance(ledger, account) == START - AMOUNT


def test_a_failing_status_query_keeps_the_payout_reconciling_until_the_bank_answers(
    taskless_ledger: launcher.RunningService, bank: BankControl, books: Books
) -> None:
    """The payment request fails and so does the status query: the payout shows
    ``reconciling`` with the failed query in its history, its money still held. Once the
    status query answers (the bank never got the payment), the saga pays again and settles."""
    ledger = taskless_ledger.url
    account = books.open(ledger, START)
    bank.faults(account, down=True, status_down=True)
    payout_id = create(ledger, account)["payout_id"]
    assert deliver(ledger, payout_id).json()["state"] == "reconciling"
    bank.faults(account, status_down=True)
    assert deliver(ledger, payout_id).json()["state"] == "reconciling"
    payout = read(ledger, payout_id)
    assert (payout["state"], events(payout)[-1]) == ("reconciling", "status_unknown")
    assert balance(ledger, account) == START - AMOUNT

    bank.faults(account)
    assert deliver(ledger, payout_id).json()["state"] == "settled"
    assert events(read(ledger, payout_id))[-3:] == ["status_not_found", "bank_call", "settled"]
    assert bank.payments(account) == {payout_id: "paid"}


def test_a_ledger_killed_between_hold_and_bank_still_ends_its_payouts(
    services: ServiceRunner, bank: BankControl, books: Books, tmp_path: Path
) -> None:
    """Two crashes with -9, each followed by a restart on the same URL (the task target):

    1. after payout A's hold committed but before any task existed (this first process cannot
       reach Cloud Tasks): the restarted ledger's sweeper finds A and re-enqueues it;
    2. while payout B's bank call is in flight: the task is delivered again (or swept), the
       saga asks the bank before paying again and learns it paid.

    Both settle, each with one payment request and one payment at the bank."""
    environ = dict(
        services.environ,
        CAPLAB_BANK_URL=bank.url,
        CAPLAB_PAYOUTS_STALE_AFTER="1s",
        CAPLAB_PAYOUTS_SWEEP_INTERVAL="200ms",
        **PAYOUT_ENV,
    )
    log = tmp_path / "ledger.log"
    service = launcher.start(
        "ledger", free_port(), dict(environ, CLOUD_TASKS_EMULATOR_HOST=UNREACHABLE_TASKS), log
    )
    try:
        launcher.wait_ready(service)
        account_a, account_b = books.open(service.url, START), books.open(service.url, START)
        bank.faults(account_b, delay_seconds=2.0)
        payout_a = create(service.url, account_a)["payout_id"]
        launcher.kill(service)
        service = launcher.start("ledger", service.port, environ, log)
        launcher.wait_ready(service)
        payout_b = create(service.url, account_b)["payout_id"]
        eventually(lambda: bank.payments(account_b) or None)
        launcher.kill(service)
        service = launcher.start("ledger", service.port, environ, log)
        launcher.wait_ready(service)
        a, b = ended(service.url, payout_a), ended(service.url, payout_b)
    finally:
        launcher.stop(service)

    assert (a["state"], b["state"]) == ("settled", "settled")
    assert events(a)[:3] == ["held", "task_not_created", "requeued"]
    assert events(b)[:2] == ["held", "bank_call"]
    assert "status query: paid" in b["history"][-1]["detail"]
    for payout, account in ((a, account_a), (b, account_b)):
        assert events(payout).count("settled") == 1
        assert bank.payments(account) == {payout["payout_id"]: "paid"}
        assert len(bank.payment_requests(account)) == 1


@pytest.mark.parametrize(
    ("faults", "final", "decision", "kept"),
    [({}, "settled", "paid", START - AMOUNT), ({"refuse": "limit exceeded"}, "compensated",
                                                "refused", START)],
    ids=["settled", "compensated"],
)  # fmt: skip
def test_a_task_redelivered_after_the_payout_ended_has_no_second_effect(
    taskless_ledger: launcher.RunningService,
    bank: BankControl,
    books: Books,
    faults: dict[str, Any],
    final: str,
    decision: str,
    kept: int,
) -> None:
    """The first delivery ends the payout (the bank pays: settled; the bank refuses:
    compensated). The same task delivered twice more, the second claiming to be the queue's
    last attempt, answers 200 with the final state each time and changes nothing: the
    payout's history, the bank's requests and payments, the balance and the writer of its
    version stay as they were. (This ledger cannot reach Cloud Tasks: the only deliveries
    are the test's.)"""
    ledger = taskless_ledger.url
    account = books.open(ledger, START)
    bank.faults(account, **faults)
    payout_id = create(ledger, account)["payout_id"]
    first = deliver(ledger, payout_id)
    assert (first.status_code, first.json()["state"]) == (200, final)
    ended_payout = read(ledger, payout_id)
    requests = bank.observed(account)["requests"]
    writer = last_writer(ledger, account)

    again = [deliver(ledger, payout_id), deliver(ledger, payout_id, QUEUE.retry.max_attempts - 1)]

    assert [(a.status_code, a.json()["state"]) for a in again] == [(200, final)] * 2
    assert read(ledger, payout_id) == ended_payout
    assert events(ended_payout).count(final) == 1
    assert bank.observed(account)["requests"] == requests
    assert bank.payments(account) == {payout_id: decision}
    assert balance(ledger, account) == kept
    assert last_writer(ledger, account) == writer
