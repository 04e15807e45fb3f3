"""The ledger, configured as on Cloud Run, knows who calls it: every request but the probes
needs a valid Google-style ID token for one of its audiences, and each account created and
transfer committed is logged with the caller's identity. ``caplab load --target`` keeps
working: it puts ID tokens for the service URL on every request."""

from __future__ import annotations

import argparse
import asyncio
import io
import uuid
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rich.console import Console

from caplab.core.errors import CaplabError
from caplab.local import launcher
from loadtest.config import LoadConfig
from loadtest.load_cli import endpoints_from
from loadtest.runner import Endpoints, run_load
from tests.fixtures.security import Issuer, log_entries, running_service

ALICE = "alice@caplab-test.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def ledger(
    module_issuer: Issuer, service_environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[launcher.RunningService]:
    """A ledger verifying callers against ``module_issuer``, for its custom audience and its URL."""
    env = module_issuer.settings("CAPLAB_CALLER", "caplab-ledger,{url}")
    log_dir = tmp_path_factory.mktemp("caller-identity")
    with running_service(service_environ, log_dir, "ledger", env) as service:
        yield service


def test_calls_without_a_valid_token_are_refused(
    ledger: launcher.RunningService, module_issuer: Issuer, other_key: rsa.RSAPrivateKey
) -> None:
    """No token, a token for another audience, an expired one, one signed by another key or
    naming another issuer: each is a 401 problem. The probes need none."""
    invalid = {
        "none": {},
        "other-audience": module_issuer.bearer("caplab-notifier"),
        "expired": module_issuer.bearer("caplab-ledger", lifetime=-120),
        "forged": module_issuer.bearer("caplab-ledger", key=other_key),
        "other-issuer": module_issuer.bearer("caplab-ledger", issuer="https://accounts.google.com"),
        "not-bearer": {"Authorization": "Basic YTpi"},
    }
    with httpx.Client(base_url=ledger.url, timeout=30) as http:
        for name, headers in invalid.items():
            for method, path in (("GET", "/v1/snapshot?accounts=a"), ("POST", "/v1/accounts")):
                response = http.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (name, path)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["www-authenticate"] == "Bearer"
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200


def test_each_transfer_is_logged_with_its_caller(
    ledger: launcher.RunningService, module_issuer: Issuer
) -> None:
    """Alice (a token with a verified e-mail, custom audience) opens the accounts; a caller
    whose token names only its subject (URL audience) moves the money: the log says who did
    what."""
    alice = module_issuer.bearer("caplab-ledger", email=ALICE)
    subject_only = module_issuer.bearer(ledger.url, email=None)
    payer, payee = (f"acct-{uuid.uuid4().hex[:12]}" for _ in range(2))
    with httpx.Client(base_url=ledger.url, timeout=30) as http:
        for account in (payer, payee):
            body = {"id": account, "owner": "t", "balance_cents": 100}
            assert http.post("/v1/accounts", json=body, headers=alice).status_code == 201
        moved = http.post(
            "/v1/transfers",
            json={"from": payer, "to": payee, "amount_cents": 40},
            headers={**subject_only, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert moved.status_code == 201, moved.text
    entries = log_entries(ledger)
    created = [e for e in entries if e["message"] == "account created"]
    assert {(e["account"], e["caller"]) for e in created} == {(payer, ALICE), (payee, ALICE)}
    (committed,) = [e for e in entries if e["message"] == "transfer committed"]
    assert committed["caller"] == "sub:1234567890"
    assert committed["transfer_id"] == moved.json()["transfer_id"]


def test_caplab_load_target_authenticates_with_id_tokens(
    ledger: launcher.RunningService, module_issuer: Issuer
) -> None:
    """``caplab load --target URL`` (its endpoints, with an injected token source instead of
    Google's) runs against the verifying ledger; without tokens the run stops on a 401."""
    audiences: list[str] = []

    def token_source(audience: str) -> str:
        audiences.append(audience)
        return module_issuer.token(audience, email="lab@caplab-test.iam.gserviceaccount.com")

    args = argparse.Namespace(target=ledger.url, activity_url=None, replica_url=None)
    endpoints = endpoints_from(args, token_source)
    config = LoadConfig(rate=20, duration=1.0, warmup=0.0, mix={"strong": 1, "transfer": 1},
                        accounts=2)  # fmt: skip
    console = Console(file=io.StringIO())
    result = asyncio.run(run_load(config, endpoints, console))
    assert audiences == [ledger.url]
    outcomes = {record.outcome for record in result.records}
    assert "ok" in outcomes
    assert outcomes <= {"ok", "rejected"}
    with pytest.raises(CaplabError, match="401"):
        asyncio.run(run_load(config, Endpoints(ledger.url), console))
