"""Transfers through HTTP: idempotency-key semantics, validation problems, and money that is
conserved under concurrent clients."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import OpenAccount, transfer

from tests.fixtures.latency_proxy import latency_proxy
from tests.fixtures.services import ServiceRunner


def test_replay_returns_the_first_response_and_applies_once(
    client: httpx.Client, open_account: OpenAccount
) -> None:
    """The same key and body again: same status and body, marked replayed, money moved once."""
    source, target = open_account(1000), open_account(0)
    key = uuid.uuid4().hex
    first = transfer(client, source, target, 300, key)
    again = transfer(client, source, target, 300, key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    balance = client.get(f"/v1/accounts/{source}").json()
    assert (balance["balance_cents"], balance["version"]) == (700, 2)
    fetched = client.get(f"/v1/transfers/{first.json()['transfer_id']}").json()
    assert fetched["commit_timestamp"] == first.json()["commit_timestamp"]


def test_same_key_with_another_body_is_422(client: httpx.Client, open_account: OpenAccount):
    """Reusing a key for a different request is refused, and nothing moves."""
    source, target = open_account(1000), open_account(0)
    key = uuid.uuid4().hex
    assert transfer(client, source, target, 100, key).status_code == 201
    mismatch = transfer(client, source, target, 101, key)
    assert mismatch.status_code == 422
    assert mismatch.json()["type"].endswith("/idempotency-key-reused")
    assert client.get(f"/v1/accounts/{source}").json()["balance_cents"] == 900


def test_duplicate_while_first_in_flight_is_409(
    services: ServiceRunner, service_environ: dict[str, str], open_account: OpenAccount
) -> None:
    """A duplicate arriving while the first request is still committing gets 409; once the
    first is done, the key replays. Spanner is reached through a slow link (150 ms per chunk)
    so the first request is reliably still in flight."""
    source, target = open_account(1000), open_account(0)
    key = uuid.uuid4().hex
    with (
        latency_proxy(service_environ["SPANNER_EMULATOR_HOST"], 0.15) as slow_spanner,
        services.restartable("ledger", {"SPANNER_EMULATOR_HOST": slow_spanner}) as slow_ledger,
        httpx.Client(base_url=slow_ledger.url, timeout=30) as slow,
    ):
        results: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: results.append(transfer(slow, source, target, 10, key))
        )
        first.start()
        time.sleep(0.3)
        duplicate = transfer(slow, source, target, 10, key)
        first.join()
        replay = transfer(slow, source, target, 10, key)
    assert duplicate.status_code == 409
    assert duplicate.json()["type"].endswith("/idempotency-key-in-flight")
    assert duplicate.headers["retry-after"] == "1"
    assert results[0].status_code == 201
    assert replay.status_code == 201
    assert replay.json() == results[0].json()


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        ({"from": "{a}", "to": "{b}", "amount_cents": 0}, {}, 422, "body.amount_cents"),
        ({"from": "{a}", "to": "{b}", "amount_cents": -5}, {}, 422, "body.amount_cents"),
        ({"from": "{a}", "to": "{b}", "amount_cents": 1.5}, {}, 422, "body.amount_cents"),
        ({"from": "{a}", "to": "{a}", "amount_cents": 1}, {}, 422, "body.to"),
        ({"from": "{a}", "to": "nobody-{b}", "amount_cents": 1}, {}, 404, "body.to"),
        ({"from": "nobody-{a}", "to": "{b}", "amount_cents": 1}, {}, 404, "body.from"),
        ({"from": "{a}", "to": "{b}", "amount_cents": 501}, {}, 422, "body.amount_cents"),
        ({"from": "{a}", "to": "{b}", "amount_cents": 1}, None, 400, "header.Idempotency-Key"),
        ({"to": "{b}", "amount_cents": 1}, {}, 422, "body.from"),
    ],
)
def test_transfer_errors_are_problems_naming_the_field(
    client: httpx.Client,
    open_account: OpenAccount,
    body: dict[str, object],
    headers: dict[str, str] | None,
    status: int,
    field: str,
) -> None:
    """Invalid transfers answer RFC 9457 problems naming the field; nothing is applied."""
    a, b = open_account(500), open_account(0)
    payload = {k: v.format(a=a, b=b) if isinstance(v, str) else v for k, v in body.items()}
    response = client.post(
        "/v1/transfers",
        json=payload,
        headers={"Idempotency-Key": uuid.uuid4().hex} if headers is not None else {},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert client.get(f"/v1/accounts/{a}").json()["version"] == 1


def test_malformed_json_is_a_problem(client: httpx.Client) -> None:
    """A body that is not JSON is a 422 problem about the body, not a 500."""
    response = client.post(
        "/v1/transfers",
        content=b'{"from": "a",',
        headers={"content-type": "application/json", "Idempotency-Key": "k"},
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/malformed-json")


def test_concurrent_clients_conserve_money(client: httpx.Client, open_account: OpenAccount) -> None:
    """8 clients × 25 transfers among 4 accounts, some retried with the same key: the total
    is unchanged, no balance is negative, and each account's balance is exactly its opening
    balance plus the committed (non-replayed) credits minus debits."""
    opening = 1_000
    accounts = [open_account(opening) for _ in range(4)]
    base_url = str(client.base_url)

    def worker(seed: int) -> list[tuple[int, dict, bool]]:
        rng = random.Random(seed)
        outcomes = []
        with httpx.Client(base_url=base_url, timeout=60) as http:
            for _ in range(25):
                source, target = rng.sample(accounts, 2)
                key = uuid.uuid4().hex
                for _attempt in range(2 if rng.random() < 0.2 else 1):
                    response = transfer(http, source, target, rng.randint(1, 400), key)
                    outcomes.append(
                        (
                            response.status_code,
                            response.json(),
                            response.headers.get("idempotent-replayed") == "true",
                        )
                    )
        return outcomes

    with ThreadPoolExecutor(8) as pool:
        outcomes = [o for batch in pool.map(worker, range(8)) for o in batch]

    assert {status for status, _, _ in outcomes} <= {201, 422}
    applied = {body["transfer_id"]: body for status, body, replayed in outcomes
               if status == 201 and not replayed}  # fmt: skip
    replays = [body for status, body, replayed in outcomes if status == 201 and replayed]
    assert all(body["transfer_id"] in applied for body in replays)
    assert len(applied) > 100
    expected = dict.fromkeys(accounts, opening)
    for body in applied.values():
        expected[body["from"]] -= body["amount_cents"]
        expected[body["to"]] += body["amount_cents"]
    snapshot = client.get("/v1/snapshot", params={"accounts": ",".join(accounts)}).json()
    balances = {a["account"]: a["balance_cents"] for a in snapshot["accounts"]}
    assert snapshot["total_cents"] == opening * len(accounts)
    assert min(balances.values()) >= 0
    assert balances == expected
    versions = {a["account"]: a["version"] for a in snapshot["accounts"]}
    touches = {a: 1 for a in accounts}
    for body in applied.values():
        touches[body["from"]] += 1
        touches[body["to"]] += 1
    assert versions == touches
