"""OIDC ID-token verification against real RS256 tokens: a key generated here, its JWKS
served over HTTP on 127.0.0.1 (``tests.fixtures.security.Issuer``), the verifier fetching it
with PyJWT as it fetches Google's. Every refusal is checked next to a token that differs only
in the one claim under test, so a refusal for the wrong reason cannot pass."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from caplab.core.environment import config_from
from caplab.core.errors import SettingError
from services.shared.oidc import GOOGLE_CERTS_URL, GOOGLE_ISSUERS, OidcVerifier, identity
from tests.fixtures.security import CERTS_PATH, Issuer

AUDIENCE = "https://ledger.example.run.app"
PUSHER = "pusher@caplab-test.iam.gserviceaccount.com"


def claims_for(module_issuer: Issuer, **changes: Any) -> dict[str, Any]:
    """Google's claims for PUSHER and AUDIENCE, valid for an hour; ``changes`` replace some
    (a value of None drops the claim)."""
    now = int(time.time())
    claims = {
        "iss": module_issuer.name,
        "aud": AUDIENCE,
        "sub": "1234567890",
        "iat": now,
        "exp": now + 3600,
        "email": PUSHER,
        "email_verified": True,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def bearer(
    module_issuer: Issuer,
    key: rsa.RSAPrivateKey | None = None,
    kid: str | None = None,
    **changes: Any,
) -> str:
    token = jwt.encode(
        claims_for(module_issuer, **changes),
        key or module_issuer.key,
        algorithm="RS256",
        headers={"kid": kid or module_issuer.key_id},
    )
    return f"Bearer {token}"


def verifier(module_issuer: Issuer, **options: Any) -> OidcVerifier:
    settings: dict[str, Any] = {
        "audience": AUDIENCE,
        "issuer": module_issuer.name,
        "certs_url": module_issuer.url + CERTS_PATH,
    }
    return OidcVerifier(**(settings | options))


def test_a_token_for_this_audience_from_the_issuer_is_accepted_with_its_claims(
    module_issuer: Issuer,
) -> None:
    claims = verifier(module_issuer, service_account=PUSHER).claims(bearer(module_issuer))
    assert claims is not None
    assert (claims["aud"], claims["iss"], claims["email"]) == (AUDIENCE, module_issuer.name, PUSHER)
    assert identity(claims) == PUSHER


def test_a_token_for_another_audience_is_refused(module_issuer: Issuer) -> None:
    check = verifier(module_issuer)
    assert check.claims(bearer(module_issuer, aud="https://other.example.run.app")) is None
    assert check.claims(bearer(module_issuer, aud=[AUDIENCE + "x"])) is None
    assert check.claims(bearer(module_issuer)) is not None


def test_any_one_of_several_audiences_is_accepted(module_issuer: Issuer) -> None:
    check = verifier(module_issuer, audience=("https://a.example", AUDIENCE))
    assert check.claims(bearer(module_issuer)) is not None
    assert check.claims(bearer(module_issuer, aud="https://a.example")) is not None
    assert check.claims(bearer(module_issuer, aud="https://b.example")) is None


def test_a_token_from_another_issuer_is_refused(module_issuer: Issuer) -> None:
    check = verifier(module_issuer)
    assert check.claims(bearer(module_issuer, iss="https://accounts.google.com")) is None
    assert check.claims(bearer(module_issuer, iss=module_issuer.name + "/other")) is None


def test_without_a_configured_issuer_only_googles_issuers_are_accepted(
    module_issuer: Issuer,
) -> None:
    check = verifier(module_issuer, issuer=None)
    for google in GOOGLE_ISSUERS:
        assert check.claims(bearer(module_issuer, iss=google)) is not None, google
    assert check.claims(bearer(module_issuer)) is None


def test_an_expired_token_is_refused(module_issuer: Issuer) -> None:
    """Expired a minute ago (PyJWT allows no leeway); the same token valid is accepted."""
    check = verifier(module_issuer)
    now = int(time.time())
    assert check.claims(bearer(module_issuer, iat=now - 3600, exp=now - 60)) is None
    assert check.claims(bearer(module_issuer, iat=now - 3600, exp=now + 60)) is not None


def test_a_token_signed_by_a_foreign_key_is_refused(
    module_issuer: Issuer, other_key: rsa.RSAPrivateKey
) -> None:
    """Signed by a key the issuer does not publish, even under the issuer's key id."""
    check = verifier(module_issuer)
    assert check.claims(bearer(module_issuer, key=other_key)) is None
    assert check.claims(bearer(module_issuer, key=other_key, kid="forged")) is None


def test_a_token_that_is_not_rs256_is_refused(module_issuer: Issuer) -> None:
    """An HS256 token under the issuer's key id: only RS256 signatures are accepted."""
    check = verifier(module_issuer)
    forged = jwt.encode(
        claims_for(module_issuer),
        "not-the-key" * 4,
        algorithm="HS256",
        headers={"kid": module_issuer.key_id},
    )
    assert check.claims(f"Bearer {forged}") is None


@pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
def test_a_token_missing_a_required_claim_is_refused(module_issuer: Issuer, claim: str) -> None:
    assert verifier(module_issuer).claims(bearer(module_issuer, **{claim: None})) is None


@pytest.mark.parametrize(
    "header", [None, "", "Basic dXNlcjpwYXNz", "bearer x", "Bearer ", "Bearer not.a.jwt"]
)
def test_a_missing_or_malformed_authorization_is_refused(
    module_issuer: Issuer, header: str | None
) -> None:
    check = verifier(module_issuer)
    assert check.claims(header) is None
    assert check.verify(header) is False


def test_a_token_for_another_email_is_refused_when_one_is_expected(module_issuer: Issuer) -> None:
    check = verifier(module_issuer, service_account=PUSHER)
    assert (
        check.claims(bearer(module_issuer, email="intruder@caplab-test.iam.gserviceaccount.com"))
        is None
    )
    assert check.claims(bearer(module_issuer)) is not None


@pytest.mark.parametrize(
    "changes",
    [
        {"email_verified": False},
        {"email_verified": "true"},
        {"email_verified": None},
        {"email": None},
        {"email": ""},
    ],
    ids=["unverified", "verified-as-text", "no-verified-claim", "no-email", "empty-email"],
)
def test_an_unverified_or_missing_email_is_refused(
    module_issuer: Issuer, changes: dict[str, Any]
) -> None:
    """Pub/Sub and Cloud Tasks tokens carry a verified email: anything less is refused, with
    or without an expected service account."""
    assert verifier(module_issuer).claims(bearer(module_issuer, **changes)) is None
    assert (
        verifier(module_issuer, service_account=PUSHER).claims(bearer(module_issuer, **changes))
        is None
    )


def test_a_caller_token_naming_only_its_subject_passes_when_no_email_is_required(
    module_issuer: Issuer,
) -> None:
    """``require_email=False`` (callers): a sub-only or unverified token passes, named by its
    subject; an expected service account still needs its verified email."""
    check = verifier(module_issuer, require_email=False)
    claims = check.claims(bearer(module_issuer, email=None, email_verified=None))
    assert claims is not None
    assert identity(claims) == "sub:1234567890"
    unverified = check.claims(bearer(module_issuer, email_verified=False))
    assert unverified is not None
    assert identity(unverified) == "sub:1234567890"
    pinned = verifier(module_issuer, require_email=False, service_account=PUSHER)
    assert pinned.claims(bearer(module_issuer, email_verified=False)) is None
    assert pinned.claims(bearer(module_issuer)) is not None


def test_verify_passes_everything_without_an_audience_and_only_valid_tokens_with_one(
    module_issuer: Issuer,
) -> None:
    """No audience (the local Pub/Sub emulator signs nothing): every request passes. With
    one, only a valid token does."""
    open_door = OidcVerifier()
    assert open_door.enabled is False
    assert open_door.verify(None) is True
    assert open_door.verify("Bearer junk") is True
    check = verifier(module_issuer)
    assert check.enabled is True
    assert check.verify(bearer(module_issuer)) is True
    assert check.verify(bearer(module_issuer, aud="https://other.example")) is False
    assert check.verify(None) is False


async def test_the_async_checks_give_the_same_verdicts(module_issuer: Issuer) -> None:
    check = verifier(module_issuer)
    claims = await check.claims_async(bearer(module_issuer))
    assert claims is not None
    assert claims["email"] == PUSHER
    assert await check.claims_async(bearer(module_issuer, aud="https://other.example")) is None
    assert await check.claims_async(None) is None
    assert await check.claims_async("") is None
    assert await check.verify_async(bearer(module_issuer)) is True
    assert await check.verify_async(bearer(module_issuer, exp=int(time.time()) - 60)) is False
    assert await check.verify_async(None) is False
    assert await OidcVerifier().verify_async(None) is True


def test_identity_is_the_verified_email_else_the_subject() -> None:
    assert identity({"sub": "42", "email": PUSHER, "email_verified": True}) == PUSHER
    assert identity({"sub": "42", "email": PUSHER, "email_verified": "true"}) == "sub:42"
    assert identity({"sub": "42", "email": PUSHER}) == "sub:42"
    assert identity({"sub": "42", "email": "", "email_verified": True}) == "sub:42"


def test_settings_name_audiences_account_issuer_and_key_set() -> None:
    configured = OidcVerifier.from_config(
        config_from(
            {
                "CAPLAB_PUSH_AUDIENCE": AUDIENCE,
                "CAPLAB_PUSH_SERVICE_ACCOUNT": PUSHER,
                "CAPLAB_PUSH_ISSUER": "http://127.0.0.1:1/issuer",
                "CAPLAB_PUSH_CERTS_URL": "http://127.0.0.1:1/certs",
            }
        ),
        "CAPLAB_PUSH",
        require_email=False,
    )
    assert configured == OidcVerifier(
        audience=AUDIENCE,
        service_account=PUSHER,
        issuer="http://127.0.0.1:1/issuer",
        certs_url="http://127.0.0.1:1/certs",
        require_email=False,
    )
    defaults = OidcVerifier.from_config(config_from({}), "CAPLAB_PUSH")
    assert defaults == OidcVerifier(
        audience=None, service_account=None, issuer=None, certs_url=GOOGLE_CERTS_URL
    )
    assert defaults.require_email is True


@pytest.mark.parametrize(
    ("text", "audience"),
    [
        ("a", "a"),
        (" a ,", "a"),
        ("a, b", ("a", "b")),
        ("a,,b,", ("a", "b")),
        (" , ", None),
        ("", None),
    ],
)
def test_audiences_are_comma_separated_and_blanks_mean_none(
    text: str, audience: str | tuple[str, ...] | None
) -> None:
    verifier = OidcVerifier.from_config(config_from({"CAPLAB_X_AUDIENCE": text}), "CAPLAB_X")
    assert verifier.audience == audience


def test_on_cloud_run_a_missing_audience_stops_the_service() -> None:
    """Fail closed: with ``K_SERVICE`` set a missing (or blank) audience is a SettingError
    naming the variable; with one the verifier is built."""
    for environ in ({"K_SERVICE": "ledger"}, {"K_SERVICE": "ledger", "CAPLAB_PUSH_AUDIENCE": ","}):
        with pytest.raises(SettingError) as refused:
            OidcVerifier.from_config(config_from(environ), "CAPLAB_PUSH")
        assert str(refused.value) == (
            "CAPLAB_PUSH_AUDIENCE is not set: on Cloud Run this service refuses to start "
            "rather than accept unauthenticated requests"
        )
    built = OidcVerifier.from_config(
        config_from({"K_SERVICE": "ledger", "CAPLAB_PUSH_AUDIENCE": AUDIENCE}), "CAPLAB_PUSH"
    )
    assert built.audience == AUDIENCE
