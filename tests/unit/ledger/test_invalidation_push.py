"""The ledger's Pub/Sub push endpoint with push authentication configured as on Cloud Run
(``CAPLAB_PUSH_AUDIENCE`` and ``_SERVICE_ACCOUNT``): the real ledger app over ASGI, real
RS256 tokens from a key generated here, its JWKS served on 127.0.0.1. Spanner and Pub/Sub are
never reached (their clients point at a closed loopback port): an invalidation touches only
the cache."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from caplab.core.topology import TOPOLOGY
from services.ledger.app import create_app
from services.ledger.settings import LedgerSettings
from services.shared.events import TransferEvent
from services.shared.problems import PROBLEM_MEDIA_TYPE
from tests.fixtures.security import Issuer

AUDIENCE = "https://ledger-abc.a.run.app/internal/invalidate"
PUSHER = "caplab-push-ledger@caplab-test.iam.gserviceaccount.com"
PATH = TOPOLOGY.subscription("ledger-cache-invalidation").path
CLOSED = "127.0.0.1:9"
"""The discard port: nothing listens, and nothing here connects."""


@pytest.fixture
async def ledger(
    module_issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    for variable in ("SPANNER_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        monkeypatch.setenv(variable, CLOSED)
    settings = LedgerSettings.from_environ(
        {**module_issuer.settings("CAPLAB_PUSH", AUDIENCE), "CAPLAB_PUSH_SERVICE_ACCOUNT": PUSHER}
    )
    assert settings.push_auth.enabled
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        yield client


def envelope(event_id: str) -> dict[str, object]:
    event = TransferEvent(event_id, "t1", "alice", "bob", 250, 3, 7).committed(
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    return {
        "message": {
            "data": base64.b64encode(event.to_json()).decode(),
            "attributes": event.attributes(),
            "messageId": f"m-{event_id}",
        },
        "subscription": "projects/p/subscriptions/ledger-cache-invalidation",
    }


def applied(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The event ids whose invalidation the ledger logged (the effect ran)."""
    return [
        record.fields["event_id"]  # type: ignore[attr-defined]
        for record in caplog.records
        if record.getMessage() == "cache invalidation"
    ]


async def test_a_push_with_the_subscriptions_token_is_applied(
    ledger: httpx.AsyncClient, module_issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="services.ledger.app"):
        response = await ledger.post(
            PATH, json=envelope("e-ok"), headers=module_issuer.bearer(AUDIENCE, email=PUSHER)
        )
    assert response.status_code == 204
    assert applied(caplog) == ["e-ok"]


@pytest.mark.parametrize(
    "token",
    ["missing", "wrong-audience", "wrong-account", "expired", "foreign-key"],
)
async def test_a_push_without_a_valid_token_is_a_401_problem_and_not_applied(
    ledger: httpx.AsyncClient,
    module_issuer: Issuer,
    other_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
    token: str,
) -> None:
    other = "someone@caplab-test.iam.gserviceaccount.com"
    headers = {
        "missing": lambda: {},
        "wrong-audience": lambda: module_issuer.bearer(
            "https://notifier-abc.a.run.app", email=PUSHER
        ),
        "wrong-account": lambda: module_issuer.bearer(AUDIENCE, email=other),
        "expired": lambda: module_issuer.bearer(AUDIENCE, email=PUSHER, lifetime=-60),
        "foreign-key": lambda: module_issuer.bearer(AUDIENCE, email=PUSHER, key=other_key),
    }[token]()
    with caplog.at_level(logging.INFO, logger="services.ledger.app"):
        response = await ledger.post(PATH, json=envelope(f"e-{token}"), headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"] == "Bearer"
    problem = response.json()
    assert (problem["status"], problem["type"].rsplit("/", 1)[-1]) == (401, "unauthenticated")
    assert applied(caplog) == []
