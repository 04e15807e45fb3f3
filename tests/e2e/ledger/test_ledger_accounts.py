"""Account creation as docs/ledger.md documents it: 201 the first time, 200 with the account
as it is now for the same id and owner, 409 for another owner."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.ledger.conftest import OpenAccount, transfer


def test_create_is_201_then_200_as_it_is_now_for_the_same_owner_and_409_for_another(
    client: httpx.Client, open_account: OpenAccount
) -> None:
    """The first create answers 201 at version 1. After a transfer moved the account, the
    same id and owner again answers 200 with the account as it is now (its balance and
    version, not the body's) and ``created`` false, writing nothing. Another owner is a 409
    problem naming ``body.id``; the account stays as it was."""
    account = f"acct-{uuid.uuid4().hex[:12]}"
    body = {"id": account, "owner": "alice", "balance_cents": 500}
    first = client.post("/v1/accounts", json=body)
    assert first.status_code == 201, first.text
    assert first.json() == {
        "account": account,
        "owner": "alice",
        "balance_cents": 500,
        "version": 1,
        "commit_timestamp": first.json()["commit_timestamp"],
        "created": True,
    }
    moved = transfer(client, account, open_account(0), 200)
    assert moved.status_code == 201, moved.text

    again = client.post("/v1/accounts", json=body)
    assert again.status_code == 200, again.text
    assert again.json() == {
        "account": account,
        "owner": "alice",
        "balance_cents": 300,
        "version": 2,
        "commit_timestamp": moved.json()["commit_timestamp"],
        "created": False,
    }

    clash = client.post("/v1/accounts", json=dict(body, owner="mallory", balance_cents=10**6))
    assert clash.status_code == 409, clash.text
    assert clash.headers["content-type"] == "application/problem+json"
    assert clash.json()["type"].endswith("/account-exists")
    assert clash.json()["field"] == "body.id"

    now = client.get(f"/v1/accounts/{account}").json()
    assert (now["owner"], now["balance_cents"], now["version"]) == ("alice", 300, 2)
    assert now["last_writer"] == moved.json()["transfer_id"]
