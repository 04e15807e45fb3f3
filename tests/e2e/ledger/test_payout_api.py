"""The payout API's contract through the ledger process: idempotent creation, the caller never
choosing the bank, problem+json for bad input, no payout endpoint while no bank is configured,
and no generated request answered 5xx. The ledger's invariant is checked after each test
(``books``)."""

from __future__ import annotations

import uuid

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from caplab.local import launcher
from tests.fixtures.bank import BankControl, Books
from tests.fixtures.fanout import eventually

START = 10_000
EXAMPLES_PER_OPERATION = 15
PROBLEM = "application/problem+json"


def post(ledger: str, body: dict[str, object], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return httpx.post(f"{ledger}/v1/payouts", json=body, headers=headers, timeout=30)


def test_a_payout_is_idempotent_on_its_key(
    bank_ledger: launcher.RunningService, bank: BankControl, books: Books
) -> None:
    """The same key and body return the same payout (200, Idempotent-Replayed) and hold once;
    the same key with another body is a 422; no key is a 400; each names the header. The
    payout then settles once at the bank."""
    ledger = bank_ledger.url
    account = books.open(ledger, START)
    body: dict[str, object] = {"account": account, "amount_cents": 100}
    key = str(uuid.uuid4())
    first, again = post(ledger, body, key), post(ledger, body, key)
    other = post(ledger, body | {"amount_cents": 101}, key)
    keyless = post(ledger, body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["payout_id"] == first.json()["payout_id"]
    for refused, status in ((other, 422), (keyless, 400)):
        assert (refused.status_code, refused.headers["content-type"]) == (status, PROBLEM)
        assert refused.json()["field"] == "header.Idempotency-Key"

    payout_id = first.json()["payout_id"]

    def settled() -> dict[str, object] | None:
        payout = httpx.get(f"{ledger}/v1/payouts/{payout_id}", timeout=10).json()
        return payout if payout["state"] == "settled" else None

    payout = eventually(settled, timeout=30)
    assert payout["amount_cents"] == 100
    assert bank.payments(account) == {payout_id: "paid"}


def test_the_caller_cannot_choose_the_bank_and_bad_input_is_a_problem(
    bank_ledger: launcher.RunningService, books: Books
) -> None:
    """A ``bank_url`` in the body is refused (422 naming it); so are a bad amount, a bad
    account and a bad payout id; an unknown account is a 404 and an overdraft a 422, each
    holding nothing."""
    ledger = bank_ledger.url
    account = books.open(ledger, START)
    cases = [
        ({"account": account, "amount_cents": 1, "bank_url": "http://evil.example"}, 422,
         "body.bank_url"),
        ({"account": account, "amount_cents": 0}, 422, "body.amount_cents"),
        ({"account": account, "amount_cents": 1.5}, 422, "body.amount_cents"),
        ({"account": "no#hash", "amount_cents": 1}, 422, "body.account"),
        ({"account": f"missing-{uuid.uuid4().hex[:8]}", "amount_cents": 1}, 404, "body.account"),
        ({"account": account, "amount_cents": START + 1}, 422, "body.amount_cents"),
    ]  # fmt: skip
    for body, status, field in cases:
        response = post(ledger, body, str(uuid.uuid4()))
        assert (response.status_code, response.headers["content-type"]) == (status, PROBLEM)
        assert response.json()["field"] == field, response.text
    bad_id = httpx.get(f"{ledger}/v1/payouts/not-an-id", timeout=10)
    assert (bad_id.status_code, bad_id.json()["field"]) == (422, "path.payout_id")
    unknown = httpx.get(f"{ledger}/v1/payouts/{uuid.uuid4().hex}", timeout=10)
    assert (unknown.status_code, unknown.headers["content-type"]) == (404, PROBLEM)
    balance = httpx.get(f"{ledger}/v1/accounts/{account}", timeout=10).json()["balance_cents"]
    assert balance == START


def test_without_a_bank_the_ledger_has_no_payout_endpoints(
    ledger: launcher.RunningService, books: Books
) -> None:
    """The session's ledger has no ``CAPLAB_BANK_URL``: its payout endpoints do not exist (404
    problem, absent from the OpenAPI document) and the account keeps its money."""
    account = books.open(ledger.url, START)
    response = post(ledger.url, {"account": account, "amount_cents": 100}, str(uuid.uuid4()))
    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM)
    paths = httpx.get(f"{ledger.url}/openapi.json", timeout=10).json()["paths"]
    assert not [path for path in paths if "payout" in path]
    balance = httpx.get(f"{ledger.url}/v1/accounts/{account}", timeout=10).json()["balance_cents"]
    assert balance == START


def test_generated_requests_to_the_payout_endpoints_never_get_a_server_error(
    bank_ledger: launcher.RunningService,
) -> None:
    """Requests drawn from the OpenAPI document of a ledger with a bank, for each payout
    operation, answer below 500 (the ledger-wide test runs on a ledger without payouts)."""
    schema = schemathesis.openapi.from_url(bank_ledger.url + "/openapi.json")
    server_errors: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if "payout" not in operation.path and operation.path != "/internal/bank":
            continue

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=operation.as_strategy())
        def send(case: schemathesis.Case) -> None:
            nonlocal sent
            response = case.call(base_url=bank_ledger.url, timeout=30)
            sent += 1
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path}: {response.text[:200]}")

        send()
    assert server_errors == []
    # Three payout operations take inputs (create, read, the task); each got examples.
    assert sent >= 2 * EXAMPLES_PER_OPERATION
