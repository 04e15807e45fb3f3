"""OIDC tokens on HTTP tasks verify against the emulator's published keys, as a Cloud Run
handler verifies Google's: discovery document → JWKS → signature, audience and issuer."""

from __future__ import annotations

import httpx
import jwt
import pytest
from google.cloud import tasks_v2

from emulators.cloudtasks import CloudTasksEmulator
from emulators.cloudtasks.target import RecordingTarget
from tests.fixtures.cloudtasks_helpers import http_task, make_queue

ACCOUNT = "notifier@caplab-local.iam.gserviceaccount.com"


def _verify(emulator: CloudTasksEmulator, token: str, audience: str) -> dict[str, object]:
    discovery = httpx.get(emulator.discovery_url).json()
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
    return jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, issuer=discovery["issuer"]
    )


def _token_sent(
    emulator: CloudTasksEmulator,
    client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
    oidc: tasks_v2.OidcToken,
) -> tuple[str, str]:
    url = target.url("/ok")
    queue = make_queue(client)
    task = client.create_task(
        parent=queue.name,
        task=http_task(url, http={"oidc_token": oidc, "headers": {"Authorization": "user"}}),
    )
    emulator.run_until_idle()
    (received,) = target.for_task(task.name)
    scheme, _, token = received.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return token, url


def test_token_verifies_with_the_url_as_default_audience(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """Without an audience the token's audience is the task URL; it verifies against the
    JWKS and names the service account; the user's Authorization header is replaced. Token
    times are wall-clock even after the fake clock has run two hours ahead."""
    fake_emulator.advance(7200)
    token, url = _token_sent(
        fake_emulator, fake_client, target, tasks_v2.OidcToken(service_account_email=ACCOUNT)
    )
    claims = _verify(fake_emulator, token, audience=url)
    assert claims["email"] == ACCOUNT
    assert claims["aud"] == url


def test_token_for_another_audience_is_rejected(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A token minted for another audience fails a handler that expects its own URL."""
    token, url = _token_sent(
        fake_emulator,
        fake_client,
        target,
        tasks_v2.OidcToken(service_account_email=ACCOUNT, audience="https://elsewhere.example"),
    )
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(fake_emulator, token, audience=url)
    assert _verify(fake_emulator, token, audience="https://elsewhere.example")["sub"] == ACCOUNT
