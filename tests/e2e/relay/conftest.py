"""Fixtures for the relay's end-to-end tests: relay processes on the session's stack, a pull
subscription tapping ``transfer-events``, transfers through the session's ledger, and a
cuttable TCP link to Spanner (:class:`loadtest.chaos.Link`) for one relay only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from caplab.local.launcher import RunningService
from tests.fixtures.relay import SpannerLink, Transfer


@pytest.fixture
def transfer(ledger: RunningService) -> Iterator[Transfer]:
    """``transfer(amount)``: one transfer between two fresh accounts of this test, through the
    ledger; its transfer id."""
    with httpx.Client(base_url=ledger.url, timeout=30) as http:
        accounts = []
        for _ in range(2):
            account = f"acct-{uuid.uuid4().hex[:12]}"
            response = http.post(
                "/v1/accounts", json={"id": account, "owner": "relay", "balance_cents": 10**9}
            )
            assert response.status_code == 201, response.text
            accounts.append(account)

        def send(amount: int) -> str:
            response = http.post(
                "/v1/transfers",
                json={
                    "from": accounts[amount % 2],
                    "to": accounts[1 - amount % 2],
                    "amount_cents": amount,
                },
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code == 201, response.text
            return response.json()["transfer_id"]

        yield send


@pytest.fixture
def spanner_link(emulator_env: dict[str, str]) -> Iterator[SpannerLink]:
    link = SpannerLink(emulator_env["SPANNER_EMULATOR_HOST"])
    try:
        yield link
    finally:
        link.close()


@pytest.fixture
def database(emulator_env: dict[str, str]) -> Any:
    """The session's ledger database, read directly."""
    from google.cloud import spanner

    client = spanner.Client(project=LOCAL_PROJECT)
    return client.instance(TOPOLOGY.spanner.instance).database(TOPOLOGY.spanner.database)
