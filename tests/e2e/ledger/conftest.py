"""Fixtures for the ledger's end-to-end tests: an HTTP client on the session's ledger process
and a factory of fresh accounts (unique ids, so tests never share state)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from caplab.local.launcher import RunningService

OpenAccount = Callable[[int], str]


@pytest.fixture
def client(ledger: RunningService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ledger.url, timeout=30.0) as http:
        yield http


def open_account_with(http: httpx.Client, balance_cents: int) -> str:
    account = f"acct-{uuid.uuid4().hex[:12]}"
    response = http.post(
        "/v1/accounts", json={"id": account, "owner": "tester", "balance_cents": balance_cents}
    )
    assert response.status_code == 201, response.text
    return account


@pytest.fixture
def open_account(client: httpx.Client) -> OpenAccount:
    """``open_account(balance_cents)`` -> the id of a new account holding that much."""
    return lambda balance_cents: open_account_with(client, balance_cents)


def transfer(http: httpx.Client, source: str, target: str, amount: int, key: str | None = None):
    return http.post(
        "/v1/transfers",
        json={"from": source, "to": target, "amount_cents": amount},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )
