"""Transfers through HTTP: idempotency-key semantics, validation problems, and money that is
conserved under concurrent clients."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.e2e.ledger.conftest import OpenAccount, transfer, transfer_held_at_spanner
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
    first is done, the key replays. The ledger reaches Spanner through a link that holds the
    first message carrying the key (the first request's read of it): the duplicate is sent
    once that message is held, so the first request is in flight by construction, and stays
    so until the link is released."""
    source, target = open_account(1000), open_account(0)
    key = uuid.uuid4().hex
    spanner_host = service_environ["SPANNER_EMULATOR_HOST"]
    with transfer_held_at_spanner(services, spanner_host, source, target, 10, key) as held:
        duplicate = transfer(held.http, source, target, 10, key)
        held.spanner.release()
        original = held.in_flight.result()
        replay = transfer(held.http, source, target, 10, key)
    assert duplicate.status_code == 409
    assert duplicate.json()["type"].endswith("/idempotency-key-in-flight")
    assert duplicate.json()["field"] == "header.Idempotency-Key"
    assert duplicate.headers["retry-after"] == "1"
    assert original.status_code == 201, original.text
    assert "idempotent-replayed" not in original.headers
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == original.json()


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


@dataclass(frozen=True)
class Planned:
    key: str
    source: str
    target: str
    amount: int
    attempts: int


def test_concurrent_clients_apply_each_key_once_and_conserve_money(
    client: httpx.Client, open_account: OpenAccount
) -> None:
    """8 clients × 25 transfers among 4 accounts, one in five sent twice with the same key.

    What the ledger did is read back from the ledger, not from the answers: after the run a
    probe per key (same key, a body naming no account) says whether the key is stored (422:
    the key was used for another body) or not (404: nothing was stored, nothing applied).
    Then each account's balance and version must be exactly its opening values plus the
    *planned* amounts of the stored keys, once each: a retry applied twice, or a transfer
    applied without its key, breaks them. Refusals (insufficient funds) are the only allowed
    failures, and they store nothing. Every retry of a committed key is a replay of it."""
    opening = 1_000
    accounts = [open_account(opening) for _ in range(4)]
    base_url = str(client.base_url)

    def plan(seed: int) -> list[Planned]:
        rng = random.Random(seed)
        return [
            Planned(uuid.uuid4().hex, *rng.sample(accounts, 2), rng.randint(1, 400),
                    2 if rng.random() < 0.2 else 1)
            for _ in range(25)
        ]  # fmt: skip

    def worker(planned: list[Planned]) -> list[list[httpx.Response]]:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            return [
                [transfer(http, p.source, p.target, p.amount, p.key) for _ in range(p.attempts)]
                for p in planned
            ]

    plans = [plan(seed) for seed in range(8)]
    assert sum(p.attempts == 2 for ps in plans for p in ps) >= 20  # the plan retries keys
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(worker, plans))

    stored: list[Planned] = []
    for planned, responses in zip(
        [p for ps in plans for p in ps], [r for rs in answers for r in rs], strict=True
    ):
        probe = transfer(client, f"nobody-{planned.key}", planned.target, 1, planned.key)
        assert probe.status_code in (404, 422), probe.text
        if probe.status_code == 422:
            assert probe.json()["type"].endswith("/idempotency-key-reused")
            stored.append(planned)
        statuses = [r.status_code for r in responses]
        first = responses[0]
        if first.status_code == 201:
            assert probe.status_code == 422, "a 201 whose key the ledger does not know"
            assert "idempotent-replayed" not in first.headers
            for retry in responses[1:]:
                assert retry.status_code == 201
                assert retry.headers["idempotent-replayed"] == "true"
                assert retry.json() == first.json()
        else:
            assert first.json()["type"].endswith("/insufficient-funds"), first.text
            assert set(statuses) <= {201, 422}
            assert (probe.status_code == 422) == (201 in statuses)

    assert len(stored) > 100
    expected = dict.fromkeys(accounts, opening)
    versions = dict.fromkeys(accounts, 1)
    for planned in stored:
        expected[planned.source] -= planned.amount
        expected[planned.target] += planned.amount
        versions[planned.source] += 1
        versions[planned.target] += 1
    snapshot = client.get("/v1/snapshot", params={"accounts": ",".join(accounts)}).json()
    assert {a["account"]: a["balance_cents"] for a in snapshot["accounts"]} == expected
    assert {a["account"]: a["version"] for a in snapshot["accounts"]} == versions
    assert snapshot["total_cents"] == opening * len(accounts)
    assert min(expected.values()) >= 0
