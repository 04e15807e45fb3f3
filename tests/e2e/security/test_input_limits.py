"""Bad input is a 4xx problem naming the field, never a 500: bodies are capped, strings are
bounded to their columns, durations are bounded before any arithmetic, amounts are strict
integers. And ``/readyz`` says "not ready" without saying why (the log does)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from services.shared.app import DEFAULT_MAX_BODY_BYTES
from tests.fixtures.security import log_entries
from tests.fixtures.services import ServiceRunner


@pytest.fixture(scope="module")
def urls(services: ServiceRunner) -> dict[str, str]:
    return {name: services.start(name).url for name in ("ledger", "notifier", "activity")}


def expect(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert response.json()["field"] == field


TRANSFER = {"from": "acct-a", "to": "acct-b", "amount_cents": 1}
KEY = {"Idempotency-Key": "k-1"}


@pytest.mark.parametrize(
    ("method", "path", "options", "field"),
    [
        ("GET", "/v1/accounts/a", {"params": {"consistency": "exact",
                                              "staleness": "99999999999h"}}, "query.staleness"),
        ("GET", "/v1/accounts/a", {"params": {"consistency": "cached",
                                              "staleness": "99999999999h"}}, "query.staleness"),
        ("GET", "/v1/snapshot", {"params": {"accounts": "a", "consistency": "bounded",
                                            "staleness": "1" + "0" * 40 + "ns"}},
         "query.staleness"),
        ("GET", "/v1/snapshot", {"params": {"accounts": "a," + "b" * 300}}, "query.accounts"),
        ("GET", "/v1/accounts/" + "a" * 300, {}, "path.account_id"),
        ("POST", "/v1/accounts", {"json": {"id": "a" * 65, "owner": "o", "balance_cents": 1}},
         "body.id"),
        ("POST", "/v1/accounts", {"json": {"id": "a", "owner": "o" * 257, "balance_cents": 1}},
         "body.owner"),
        ("POST", "/v1/accounts", {"json": {"id": "a", "owner": "o", "balance_cents": "100"}},
         "body.balance_cents"),
        ("POST", "/v1/transfers", {"json": {**TRANSFER, "amount_cents": "100"}, "headers": KEY},
         "body.amount_cents"),
        ("POST", "/v1/transfers", {"json": {**TRANSFER, "amount_cents": 100.0}, "headers": KEY},
         "body.amount_cents"),
        ("POST", "/v1/transfers", {"json": {**TRANSFER, "amount_cents": True}, "headers": KEY},
         "body.amount_cents"),
        ("POST", "/v1/transfers", {"json": {**TRANSFER, "amount_cents": 10**20},
                                   "headers": KEY}, "body.amount_cents"),
        ("POST", "/v1/transfers", {"json": TRANSFER, "headers": {"Idempotency-Key": "k" * 256}},
         "header.Idempotency-Key"),
    ],
)  # fmt: skip
def test_ledger_input_is_bounded(
    urls: dict[str, str], method: str, path: str, options: dict, field: str
) -> None:
    expect(httpx.request(method, urls["ledger"] + path, timeout=30, **options), 422, field)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/accounts/" + "a" * 300 + "/webhook", {"url": "http://127.0.0.1:1/"},
         "path.account"),
        ("/v1/accounts/a/webhook", {"url": "http://127.0.0.1:1/" + "p" * 2062}, "body.url"),
        ("/v1/accounts/a/webhook", {"url": "http://127.0.0.1:1/" + "p" * 3000}, "body.url"),
        ("/v1/accounts/a/webhook", {"url": "http://127.0.0.1:1/", "extra": 1}, "body.extra"),
    ],
)  # fmt: skip
def test_notifier_input_is_bounded(urls: dict[str, str], path: str, body: dict, field: str) -> None:
    """A 2,080-character URL fits the URL type but not the ``STRING(2048)`` column."""
    expect(httpx.put(urls["notifier"] + path, json=body, timeout=30), 422, field)


def test_activity_account_is_bounded(urls: dict[str, str]) -> None:
    response = httpx.get(f"{urls['activity']}/v1/accounts/{'a' * 300}/activity", timeout=30)
    expect(response, 422, "path.account")


@pytest.mark.parametrize("name", ["ledger", "notifier", "activity"])
def test_bodies_over_the_cap_are_413(urls: dict[str, str], name: str) -> None:
    """Declared (Content-Length) or streamed (chunked) past the cap: 413 problem+json."""
    path = {"ledger": "/v1/transfers", "notifier": "/v1/accounts/a/webhook",
            "activity": "/pubsub/transfer-events"}[name]  # fmt: skip
    method = "PUT" if name == "notifier" else "POST"
    oversize = b" " * (DEFAULT_MAX_BODY_BYTES + 1)

    def chunks() -> Iterator[bytes]:
        for _ in range(DEFAULT_MAX_BODY_BYTES // 1024 + 1):
            yield b" " * 1024

    for content in (oversize, chunks()):
        response = httpx.request(method, urls[name] + path, content=content, headers=KEY,
                                 timeout=30)  # fmt: skip
        expect(response, 413)


def test_readyz_says_not_ready_and_nothing_more(services: ServiceRunner) -> None:
    """With Spanner unreachable the ledger's /readyz is a 503 whose body names no resource
    and no exception; the log has the reason."""
    cut = {"SPANNER_EMULATOR_HOST": "127.0.0.1:9", "CAPLAB_LEDGER_DEADLINE": "1s"}
    with services.restartable("ledger", cut, ready_path="/healthz") as ledger:
        response = httpx.get(f"{ledger.url}/readyz", timeout=30)
        expect(response, 503)
        assert response.json()["detail"] == "not ready"
        for leak in ("projects/", "Error", "Exception", "caplab-local", "ledger"):
            assert leak not in response.text
        reasons = [e["message"] for e in log_entries(ledger) if e["message"].startswith("not ")]
        assert reasons
        assert reasons[0] != "not ready"


def test_a_fresh_account_id_is_unaffected(urls: dict[str, str]) -> None:
    """The bounds refuse only what is out of bounds: a 64-character id still works."""
    account = uuid.uuid4().hex * 2
    body = {"id": account, "owner": "o" * 256, "balance_cents": 10**15}
    assert httpx.post(urls["ledger"] + "/v1/accounts", json=body, timeout=30).status_code == 201
