"""The ledger's request models: what a body may say, and which field a refusal names (the
shared field types themselves: tests/unit/shared/test_fields.py). The last tests send the same
bodies to the real ledger app, whose 422 problem names the field; Spanner is never reached
(its client points at a closed loopback port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.ledger.app import create_app
from services.ledger.models import AccountIn, TransferIn
from services.ledger.settings import LedgerSettings
from services.shared.fields import MAX_CENTS
from services.shared.problems import PROBLEM_MEDIA_TYPE

DISTINCT = "must differ from `from`: a transfer needs two accounts"


def refusal(model: type[AccountIn | TransferIn], body: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The locations of the errors ``body`` is refused with."""
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    return [error["loc"] for error in refused.value.errors()]


def transfer(**changes: Any) -> dict[str, Any]:
    return {"from": "alice", "to": "bob", "amount_cents": 250} | changes


def account(**changes: Any) -> dict[str, Any]:
    return {"id": "alice", "owner": "Alice", "balance_cents": 1000} | changes


def test_a_valid_transfer_keeps_its_fields() -> None:
    parsed = TransferIn.model_validate(transfer())
    assert (parsed.from_, parsed.to, parsed.amount_cents) == ("alice", "bob", 250)
    assert parsed.model_dump(by_alias=True) == transfer()


def test_a_transfer_to_its_own_source_is_refused_on_to() -> None:
    with pytest.raises(ValidationError) as refused:
        TransferIn.model_validate(transfer(to="alice"))
    (error,) = refused.value.errors()
    assert error["loc"] == ("to",)
    assert error["msg"] == f"Value error, {DISTINCT}"


def test_account_ids_differing_only_in_case_are_two_accounts() -> None:
    assert TransferIn.model_validate(transfer(to="Alice")).to == "Alice"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount_cents": 0}, "amount_cents"),
        ({"amount_cents": -250}, "amount_cents"),
        ({"amount_cents": MAX_CENTS + 1}, "amount_cents"),
        ({"to": "b#1"}, "to"),
        ({"to": "x" * 65}, "to"),
        ({"from": ""}, "from"),
        ({"memo": "hi"}, "memo"),
    ],
)
def test_a_bad_transfer_field_is_refused_by_name(changes: dict[str, Any], field: str) -> None:
    assert refusal(TransferIn, transfer(**changes)) == [(field,)]


@pytest.mark.parametrize("missing", ["from", "to", "amount_cents"])
def test_every_transfer_field_is_required(missing: str) -> None:
    body = transfer()
    del body[missing]
    assert refusal(TransferIn, body) == [(missing,)]


def test_the_largest_transfer_and_longest_ids_are_accepted() -> None:
    longest = transfer(**{"from": "f" * 64, "to": "t" * 64, "amount_cents": MAX_CENTS})
    assert TransferIn.model_validate(longest).amount_cents == MAX_CENTS


def test_a_valid_account_keeps_its_fields() -> None:
    parsed = AccountIn.model_validate(account(owner="o" * 256, balance_cents=0))
    assert (parsed.id, parsed.owner, parsed.balance_cents) == ("alice", "o" * 256, 0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"owner": ""}, "owner"),
        ({"owner": "o" * 257}, "owner"),
        ({"id": "a/b"}, "id"),
        ({"id": "i" * 65}, "id"),
        ({"balance_cents": -1}, "balance_cents"),
        ({"balance_cents": 1.5}, "balance_cents"),
        ({"version": 3}, "version"),
    ],
)
def test_a_bad_account_field_is_refused_by_name(changes: dict[str, Any], field: str) -> None:
    assert refusal(AccountIn, account(**changes)) == [(field,)]


@pytest.fixture
async def ledger(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    for variable in ("SPANNER_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        monkeypatch.setenv(variable, "127.0.0.1:9")
    transport = httpx.ASGITransport(app=create_app(LedgerSettings.from_environ({})))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/transfers", transfer(to="alice"), "body.to"),
        ("/v1/transfers", transfer(amount_cents=0), "body.amount_cents"),
        ("/v1/transfers", transfer(**{"from": "a" * 65}), "body.from"),
        ("/v1/accounts", account(owner="o" * 257), "body.owner"),
        ("/v1/accounts", account(balance_cents=-1), "body.balance_cents"),
    ],
)
async def test_the_ledger_answers_a_bad_body_with_a_422_naming_the_field(
    ledger: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await ledger.post(path, json=body, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["field"] == field
