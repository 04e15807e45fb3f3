"""Verifying the Google-signed OIDC ID tokens on requests: Pub/Sub push, Cloud Tasks, and the
callers of a service.

In the cloud every token is signed with Google's keys (issuer ``https://accounts.google.com``,
keys at ``https://www.googleapis.com/oauth2/v3/certs``); its audience is the one configured
on the subscription, the task or by the caller, and its ``email`` the identity it stands
for. caplab's Cloud Tasks emulator signs with its own key and publishes it the same way, so
the very same check runs locally by pointing ``issuer`` and ``certs_url`` at it. The Pub/Sub
emulator signs nothing: with no audience configured, a verifier accepts every request.

**Fail closed**: where Cloud Run's ``K_SERVICE`` is set, :meth:`OidcVerifier.from_config`
refuses a missing audience with a :class:`~caplab.core.errors.SettingError` naming the
setting, and the service does not start (:mod:`services.shared.runner`).

**Cost and abuse**: the key set is fetched once and cached (PyJWT's ``PyJWKClient``, 5
minutes), so a request costs one RS256 check; a token naming an unknown key id refetches the
set at most once per :data:`UNKNOWN_KEY_COOLDOWN_SECONDS` (PyJWT's ``cooldown_duration``),
so made-up key ids cannot make the service hammer Google. :meth:`OidcVerifier.claims_async`
runs the check in a worker thread: a fetch never blocks the event loop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from caplab.core.errors import SettingError

if TYPE_CHECKING:
    import jwt
    from starlette.config import Config

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
KEY_SET_LIFESPAN_SECONDS = 300.0
UNKNOWN_KEY_COOLDOWN_SECONDS = 30.0
"""Least time between two fetches of the key set caused by unknown key ids."""
KEY_FETCH_TIMEOUT_SECONDS = 5.0

Claims = dict[str, Any]


def _audiences(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    audiences = tuple(item.strip() for item in text.split(",") if item.strip())
    return audiences or None


@dataclass(frozen=True)
class OidcVerifier:
    audience: str | tuple[str, ...] | None = None
    """The audience a token must carry (one of them, for a tuple); ``None``: verify nothing
    (the local Pub/Sub emulator sends no token)."""
    service_account: str | None = None
    """The expected ``email`` claim; ``None`` accepts any verified identity."""
    issuer: str | None = None
    """``None``: Google's issuers."""
    certs_url: str = GOOGLE_CERTS_URL
    require_email: bool = True
    """Whether the token must carry a verified ``email`` (Pub/Sub and Cloud Tasks tokens do;
    a caller's may name only its ``sub``)."""

    @classmethod
    def from_config(cls, config: Config, prefix: str, require_email: bool = True) -> OidcVerifier:
        """From ``<prefix>_AUDIENCE`` (one or more, comma-separated), ``_SERVICE_ACCOUNT``,
        ``_ISSUER`` and ``_CERTS_URL``. On Cloud Run (``K_SERVICE`` set) a missing audience
        raises :class:`~caplab.core.errors.SettingError`."""
        audiences = config(f"{prefix}_AUDIENCE", cast=_audiences, default=None)
        if audiences is None and config("K_SERVICE", default=None) is not None:
            raise SettingError(
                f"{prefix}_AUDIENCE is not set: on Cloud Run this service refuses to start "
                "rather than accept unauthenticated requests"
            )
        return cls(
            audience=audiences[0] if audiences and len(audiences) == 1 else audiences,
            service_account=config(f"{prefix}_SERVICE_ACCOUNT", default=None),
            issuer=config(f"{prefix}_ISSUER", default=None),
            certs_url=config(f"{prefix}_CERTS_URL", default=GOOGLE_CERTS_URL),
            require_email=require_email,
        )

    @property
    def enabled(self) -> bool:
        return self.audience is not None

    @functools.cached_property
    def _keys(self) -> jwt.PyJWKClient:
        import jwt

        return jwt.PyJWKClient(
            self.certs_url,
            cache_keys=True,
            lifespan=KEY_SET_LIFESPAN_SECONDS,
            timeout=KEY_FETCH_TIMEOUT_SECONDS,
            cooldown_duration=UNKNOWN_KEY_COOLDOWN_SECONDS,
        )

    def claims(self, authorization: str | None) -> Claims | None:
        """The verified claims of the ``Authorization`` header's token for this audience,
        issuer and service account, or ``None`` (blocking: it may fetch the key set)."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        import jwt

        token = authorization.removeprefix("Bearer ")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims: Claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=[self.issuer] if self.issuer else list(GOOGLE_ISSUERS),
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        email_verified = claims.get("email_verified") is True and bool(claims.get("email"))
        if self.require_email and not email_verified:
            return None
        if self.service_account is not None and (
            not email_verified or claims.get("email") != self.service_account
        ):
            return None
        return claims

    async def claims_async(self, authorization: str | None) -> Claims | None:
        """:meth:`claims` in a worker thread."""
        if not authorization:
            return None
        return await anyio.to_thread.run_sync(self.claims, authorization)

    def verify(self, authorization: str | None) -> bool:
        """Whether the request may pass: always when no audience is configured, else when
        its token verifies (blocking: prefer :meth:`verify_async` on the event loop)."""
        return not self.enabled or self.claims(authorization) is not None

    async def verify_async(self, authorization: str | None) -> bool:
        """:meth:`verify` with the token check in a worker thread."""
        return not self.enabled or await self.claims_async(authorization) is not None


def identity(claims: Claims) -> str:
    """Who the token stands for: its verified ``email``, else ``sub:<subject>``."""
    if claims.get("email_verified") is True and claims.get("email"):
        return str(claims["email"])
    return f"sub:{claims.get('sub')}"
