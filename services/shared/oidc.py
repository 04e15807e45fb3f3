"""Verifying the OIDC ID tokens Pub/Sub push and Cloud Tasks put on their requests.

In the cloud both sign with Google's keys (issuer ``https://accounts.google.com``, keys at
``https://www.googleapis.com/oauth2/v3/certs``); the token's audience is the one configured on
the subscription or task, and its ``email`` the service account they act as. caplab's Cloud
Tasks emulator signs with its own key and publishes it the same way, so the very same check
runs locally by pointing ``issuer`` and ``certs_url`` at it. The Pub/Sub emulator signs
nothing: with no audience configured, :meth:`OidcVerifier.verify` accepts every request.

PyJWT's ``PyJWKClient`` fetches the key set once and caches it (5 minutes), so a request
costs one RS256 signature check, not an HTTP round trip.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jwt
    from starlette.config import Config

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"


@dataclass(frozen=True)
class OidcVerifier:
    audience: str | None = None
    """``None``: verify nothing (the local Pub/Sub emulator sends no token)."""
    service_account: str | None = None
    """The expected ``email`` claim; ``None`` accepts any verified email."""
    issuer: str | None = None
    """``None``: Google's issuers."""
    certs_url: str = GOOGLE_CERTS_URL

    @classmethod
    def from_config(cls, config: Config, prefix: str) -> OidcVerifier:
        """From ``<prefix>_AUDIENCE``, ``_SERVICE_ACCOUNT``, ``_ISSUER`` and ``_CERTS_URL``."""
        return cls(
            audience=config(f"{prefix}_AUDIENCE", default=None),
            service_account=config(f"{prefix}_SERVICE_ACCOUNT", default=None),
            issuer=config(f"{prefix}_ISSUER", default=None),
            certs_url=config(f"{prefix}_CERTS_URL", default=GOOGLE_CERTS_URL),
        )

    @functools.cached_property
    def _keys(self) -> jwt.PyJWKClient:
        import jwt

        return jwt.PyJWKClient(self.certs_url, cache_keys=True)

    def verify(self, authorization: str | None) -> bool:
        """Whether the ``Authorization`` header carries a valid token for this audience,
        issuer and service account (always true when no audience is configured)."""
        if self.audience is None:
            return True
        if not authorization or not authorization.startswith("Bearer "):
            return False
        import jwt

        token = authorization.removeprefix("Bearer ")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=[self.issuer] if self.issuer else list(GOOGLE_ISSUERS),
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError:
            return False
        return claims.get("email_verified") is True and (
            self.service_account is None or claims.get("email") == self.service_account
        )
