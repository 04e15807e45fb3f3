"""The payout saga through the ledger process, the Cloud Tasks emulator and the webhook sink
as the bank: a bank down past the queue's max attempts is compensated and the balance
restored; a bank that recovers settles once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from tests.fixtures.fanout import eventually, unique
from tests.fixtures.services import ServiceRunner

MAX_ATTEMPTS = TOPOLOGY.queue("payouts").retry.max_attempts
START_BALANCE = 10_000


def _account(http: httpx.Client, ledger: str) -> str:
    account = unique("payee")
    response = http.post(
        f"{ledger}/v1/accounts",
        json={"id": account, "owner": "saga test", "balance_cents": START_BALANCE},
    )
    assert response.status_code == 201, response.text
    return account


def _balance(http: httpx.Client, ledger: str, account: str) -> int:
    response = http.get(f"{ledger}/v1/accounts/{account}", params={"consistency": "strong"})
    return response.json()["balance_cents"]


def _payout(http: httpx.Client, ledger: str, account: str, amount: int, bank: str) -> dict:
    response = http.post(
        f"{ledger}/v1/payouts",
        json={"account": account, "amount_cents": amount, "bank_url": bank},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_payouts_compensate_when_the_bank_stays_down_and_settle_once_when_it_recovers(
    services: ServiceRunner, sink: launcher.RunningService
) -> None:
    """Two payouts run at once. Bank A is down: after MAX_ATTEMPTS failed attempts the hold
    is compensated and the balance restored. Bank B fails twice then recovers: the payout
    settles, the bank saw exactly one successful call for it, the money has left. Each
    history records every step. (The bank breaker's threshold is raised here so that the two
    payouts, which share the sink's host, test the saga rather than the breaker.)"""
    down_hook, flaky_hook = unique("bank-down"), unique("bank-flaky")
    extra = {"CAPLAB_BANK_FAILURE_THRESHOLD": "100"}
    with services.restartable("ledger", extra) as ledger, httpx.Client(timeout=10) as http:
        assert http.put(f"{sink.url}/control/{down_hook}", json={"down": True}).is_success
        assert http.put(f"{sink.url}/control/{flaky_hook}", json={"fail_next": 2}).is_success
        payer_a, payer_b = _account(http, ledger.url), _account(http, ledger.url)

        doomed = _payout(http, ledger.url, payer_a, 2_500, f"{sink.url}/hooks/{down_hook}")
        lucky = _payout(http, ledger.url, payer_b, 4_000, f"{sink.url}/hooks/{flaky_hook}")
        assert doomed["state"] == lucky["state"] == "held"
        assert _balance(http, ledger.url, payer_a) == START_BALANCE - 2_500
        held = http.get(f"{ledger.url}/v1/accounts/{payer_a}").json()["last_writer"]
        assert held == f"payout:{doomed['payout_id']}:held"

        def ended(payout_id: str) -> Callable[[], dict | None]:
            def probe() -> dict | None:
                body = http.get(f"{ledger.url}/v1/payouts/{payout_id}").json()
                return body if body["state"] in ("settled", "compensated") else None

            return probe

        settled = eventually(ended(lucky["payout_id"]), timeout=30)
        compensated = eventually(ended(doomed["payout_id"]), timeout=60)

        assert settled["state"] == "settled"
        assert [s["state"] for s in settled["history"]] == [
            "held", "bank_failed", "bank_failed", "settled",
        ]  # fmt: skip
        bank_b = http.get(f"{sink.url}/hooks/{flaky_hook}").json()
        assert (bank_b["succeeded"], bank_b["event_ids"]) == (1, [lucky["payout_id"]])
        assert _balance(http, ledger.url, payer_b) == START_BALANCE - 4_000

        assert compensated["state"] == "compensated"
        states = [s["state"] for s in compensated["history"]]
        assert states == ["held"] + ["bank_failed"] * (MAX_ATTEMPTS - 1) + ["compensated"]
        assert http.get(f"{sink.url}/hooks/{down_hook}").json()["received"] == MAX_ATTEMPTS
        assert _balance(http, ledger.url, payer_a) == START_BALANCE
        restored = http.get(f"{ledger.url}/v1/accounts/{payer_a}").json()["last_writer"]
        assert restored == f"payout:{doomed['payout_id']}:compensated"


def test_payout_requests_are_idempotent(
    services: ServiceRunner, sink: launcher.RunningService
) -> None:
    """The same Idempotency-Key and body returns the same payout (200) and holds once; the
    same key with another body is 422; no key is 400 naming the header."""
    ledger = services.start("ledger")
    with httpx.Client(timeout=10) as http:
        account = _account(http, ledger.url)
        key = str(uuid.uuid4())
        body = {"account": account, "amount_cents": 100, "bank_url": f"{sink.url}/hooks/idem"}
        first = http.post(f"{ledger.url}/v1/payouts", json=body, headers={"Idempotency-Key": key})
        again = http.post(f"{ledger.url}/v1/payouts", json=body, headers={"Idempotency-Key": key})
        other = http.post(
            f"{ledger.url}/v1/payouts",
            json=body | {"amount_cents": 101},
            headers={"Idempotency-Key": key},
        )
        keyless = http.post(f"{ledger.url}/v1/payouts", json=body)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["payout_id"] == first.json()["payout_id"]
        assert _balance(http, ledger.url, account) == START_BALANCE - 100
        assert (other.status_code, other.json()["field"]) == (422, "header.Idempotency-Key")
        assert (keyless.status_code, keyless.json()["field"]) == (400, "header.Idempotency-Key")
