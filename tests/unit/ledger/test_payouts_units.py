"""The payout saga's pure parts: how each bank answer is read, the bank client over an
in-process transport (breaker, timeout, the request's shape), and the settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from caplab.core.environment import config_from
from services.ledger.payouts.api import PayoutIn
from services.ledger.payouts.bank import Bank, Outcome, payment_answer, status_answer
from services.ledger.payouts.settings import PayoutSettings
from services.shared.resilience import DownstreamPolicy, Downstreams


def response(status: int, body: object = None, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {}, Outcome.PAID),
        (201, {"status": "paid"}, Outcome.PAID),
        (204, None, Outcome.PAID),
        (422, {"refused": "account closed"}, Outcome.REFUSED),
        # Everything else may have paid: never a refusal.
        (422, {"detail": "amount_cents: invalid"}, Outcome.UNKNOWN),
        (422, {"refused": 3}, Outcome.UNKNOWN),
        (409, {"detail": "duplicate"}, Outcome.UNKNOWN),
        (302, None, Outcome.UNKNOWN),
        (400, {"refused": "no"}, Outcome.UNKNOWN),
        (404, None, Outcome.UNKNOWN),
        (429, None, Outcome.UNKNOWN),
        (500, None, Outcome.UNKNOWN),
        (503, {"refused": "down"}, Outcome.UNKNOWN),
    ],
)
def test_a_payment_answer_is_paid_refused_or_unknown(
    status: int, body: object, outcome: Outcome
) -> None:
    assert payment_answer(response(status, body)).outcome is outcome


def test_a_refusal_that_is_not_json_is_unknown() -> None:
    assert payment_answer(response(422, text="refused")).outcome is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"status": "paid"}, Outcome.PAID),
        (200, {"status": "refused", "refused": "limit"}, Outcome.REFUSED),
        (404, None, Outcome.NOT_FOUND),
        (404, {"payment_id": "x"}, Outcome.NOT_FOUND),
        (200, {"status": "pending"}, Outcome.UNKNOWN),
        (200, {"state": "paid"}, Outcome.UNKNOWN),
        (200, ["paid"], Outcome.UNKNOWN),
        (202, {"status": "paid"}, Outcome.UNKNOWN),
        (500, None, Outcome.UNKNOWN),
        (301, None, Outcome.UNKNOWN),
    ],
)
def test_a_status_answer_is_paid_refused_not_found_or_unknown(
    status: int, body: object, outcome: Outcome
) -> None:
    assert status_answer(response(status, body)).outcome is outcome


def settings(**environ: str) -> PayoutSettings:
    return PayoutSettings.from_config(config_from(environ))


def test_settings_defaults_leave_payouts_off_and_target_this_process() -> None:
    defaults = settings(PORT="8123")
    assert defaults.bank_url is None
    assert defaults.self_url == "http://127.0.0.1:8123"
    assert defaults.bank_policy.timeout == 5.0
    assert defaults.bank_max_attempts == 5
    assert defaults.bank_arrival_window == timedelta(minutes=1)
    assert (defaults.sweep_interval, defaults.stale_after) == (
        timedelta(seconds=30),
        timedelta(minutes=2),
    )
    tuned = settings(
        CAPLAB_BANK_URL="https://bank.example/api/",
        CAPLAB_BANK_TIMEOUT="300ms",
        CAPLAB_LEDGER_URL="https://ledger-abc.a.run.app",
    )
    assert tuned.bank_url == "https://bank.example/api"
    assert tuned.bank_policy.timeout == 0.3
    assert tuned.self_url == "https://ledger-abc.a.run.app"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CAPLAB_BANK_URL": "ftp://bank.example"}, "CAPLAB_BANK_URL"),
        ({"CAPLAB_BANK_URL": "bank.example"}, "CAPLAB_BANK_URL"),
        ({"CAPLAB_BANK_MAX_ATTEMPTS": "0"}, "CAPLAB_BANK_MAX_ATTEMPTS"),
        ({"CAPLAB_BANK_ARRIVAL_WINDOW": "1s"}, "CAPLAB_BANK_ARRIVAL_WINDOW"),
        ({"CAPLAB_PAYOUTS_SWEEP_INTERVAL": "0s"}, "CAPLAB_PAYOUTS_SWEEP_INTERVAL"),
        ({"CAPLAB_PAYOUTS_STALE_AFTER": "soon"}, "CAPLAB_PAYOUTS_STALE_AFTER"),
    ],
)
def test_bad_settings_are_refused_at_start_up(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        settings(**environ)


def test_a_payout_request_cannot_name_a_bank() -> None:
    with pytest.raises(ValidationError, match="bank_url"):
        PayoutIn.model_validate({"account": "a", "amount_cents": 1, "bank_url": "http://x"})


def bank_over(handler: Callable[[httpx.Request], Any], timeout: float = 1.0) -> Bank:
    """The saga's bank client over an in-process transport, with its own breaker (threshold
    2) and bulkhead."""
    policy = DownstreamPolicy(failure_threshold=2, reset_timeout=60, timeout=timeout)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Bank("http://bank.test", http, Downstreams(policy)["bank.test"])


async def test_a_request_the_open_breaker_refuses_is_not_sent() -> None:
    """Two 503s open the breaker; the third payment is refused locally and never sent."""
    sent: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(503)

    bank = bank_over(down)
    answers = [await bank.pay("p1", "a", 100) for _ in range(3)]
    assert [a.outcome for a in answers] == [Outcome.UNKNOWN, Outcome.UNKNOWN, Outcome.NOT_SENT]
    assert sent == ["/payments", "/payments"]


async def test_a_timeout_is_unknown_and_a_not_found_is_no_breaker_failure() -> None:
    """A bank that never answers (it waits on an event nobody sets) is cut off by the
    client's timeout: outcome unknown. 404s on status lookups leave the breaker closed."""
    never = asyncio.Event()

    async def hung(request: httpx.Request) -> httpx.Response:
        await never.wait()
        raise AssertionError("the hung bank was released")

    timed_out = await bank_over(hung, timeout=0.01).pay("p1", "a", 100)
    assert timed_out.outcome is Outcome.UNKNOWN
    assert "no answer within 0.01s" in timed_out.detail

    bank = bank_over(lambda request: httpx.Response(404))
    answers = [await bank.status("p1") for _ in range(3)]
    assert {a.outcome for a in answers} == {Outcome.NOT_FOUND}
    breaker = bank.snapshot()["breaker"]
    assert isinstance(breaker, dict)
    assert (breaker["state"], breaker["failures"]) == ("closed", 0)


async def test_the_payment_request_follows_the_contract() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"status": "paid"})

    answer = await bank_over(record).pay("p1", "acct", 250)
    assert answer.outcome is Outcome.PAID
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "http://bank.test/payments")
    assert request.headers["Idempotency-Key"] == "p1"
    assert json.loads(request.content) == {
        "payment_id": "p1",
        "account": "acct",
        "amount_cents": 250,
    }
