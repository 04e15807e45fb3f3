"""Fixtures for the ledger's end-to-end tests: an HTTP client on the session's ledger process,
a factory of fresh accounts (unique ids, so tests never share state), and a ledger of a test's
own with one transfer held in flight at its link to Spanner."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from caplab.local.launcher import RunningService
from tests.fixtures.services import ServiceRunner
from tests.fixtures.tcp_link import Link, tcp_link

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


@dataclass
class HeldTransfer:
    ledger: RunningService
    http: httpx.Client
    """A client of ``ledger`` (60 s timeout: the held transfer waits on the test)."""
    spanner: Link
    in_flight: Future[httpx.Response]


@contextlib.contextmanager
def transfer_held_at_spanner(
    services: ServiceRunner, spanner_host: str, source: str, target: str, amount: int, key: str
) -> Iterator[HeldTransfer]:
    """A ledger of its own behind a link to ``spanner_host`` that holds the first message
    carrying ``key``; yields once a transfer with that key has sent it, so the transfer is in
    flight by construction until ``spanner.release()``."""
    with (
        tcp_link(spanner_host) as spanner,
        services.restartable(
            "ledger", {"SPANNER_EMULATOR_HOST": spanner.address, "CAPLAB_LEDGER_DEADLINE": "60s"}
        ) as ledger,
        httpx.Client(base_url=ledger.url, timeout=60) as http,
        ThreadPoolExecutor(1) as pool,
    ):
        spanner.hold_at(key.encode())
        in_flight = pool.submit(transfer, http, source, target, amount, key)
        assert spanner.wait_held(), "the transfer never sent its key to Spanner"
        yield HeldTransfer(ledger, http, spanner, in_flight)
