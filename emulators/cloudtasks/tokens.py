"""OIDC ID tokens for HTTP tasks, signed by a key only this emulator holds.

Production signs with Google's keys (issuer ``https://accounts.google.com``). Locally the
emulator generates an RSA key at start-up, signs RS256 ID tokens with it, and publishes the
public half as a JWKS next to an OpenID discovery document (see :mod:`.oidc_http`), so a
handler verifies local tokens exactly as it verifies Google's: fetch the keys, check the
signature, the audience and the issuer — only the issuer URL differs.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

TOKEN_LIFETIME_SECONDS = 3600
MAX_CACHED_TOKENS = 1024
"""Tokens kept for reuse; the least recently used goes first. A bounded ``OrderedDict``
rather than a cache library: this bound is the only policy needed."""
REUSE_MARGIN_SECONDS = 300
JWKS_PATH = "/oauth2/v3/certs"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class TokenSigner:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer.rstrip("/")
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        self.key_id = hashlib.sha256(json.dumps(public_jwk, sort_keys=True).encode()).hexdigest()[
            :40
        ]
        self._public_jwk = {**public_jwk, "kid": self.key_id, "use": "sig", "alg": "RS256"}
        self._cache: OrderedDict[tuple[str, str], tuple[str, float, float]] = OrderedDict()
        """(account, audience) -> (token, expiry, issue time), least recently used first, at
        most :data:`MAX_CACHED_TOKENS` (the audience defaults to the task URL, so a client
        could otherwise grow it without bound)."""

    def id_token(self, service_account_email: str, audience: str, now: float | None = None) -> str:
        """An ID token as Cloud Tasks sends for ``oidc_token``: the service account is the
        subject and email, ``audience`` is the configured one or the task's URL.

        Its times are wall-clock (``now`` defaults to ``time.time()``) even when the emulator
        runs on a fake clock: handlers check ``iat`` and ``exp`` against their own clock.

        A token is reused for the same account and audience until it has less than
        :data:`REUSE_MARGIN_SECONDS` left: an RS256 signature costs about 1.1 ms here, which
        would otherwise take half a core at 500 dispatches/s."""
        now = time.time() if now is None else now
        key = (service_account_email, audience)
        cached = self._cache.get(key)
        if cached is not None and cached[1] - now > REUSE_MARGIN_SECONDS and cached[2] <= now:
            self._cache.move_to_end(key)
            return cached[0]
        token, expires = self._sign(service_account_email, audience, now)
        self._cache[key] = (token, expires, now)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED_TOKENS:
            self._cache.popitem(last=False)
        return token

    @property
    def cached_tokens(self) -> int:
        return len(self._cache)

    def _sign(self, service_account_email: str, audience: str, now: float) -> tuple[str, float]:
        issued = int(now)
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "azp": service_account_email,
            "sub": service_account_email,
            "email": service_account_email,
            "email_verified": True,
            "iat": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})
        return token, float(issued + TOKEN_LIFETIME_SECONDS)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._public_jwk]}

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata handlers use to find :meth:`jwks`."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.issuer + JWKS_PATH,
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub"],
        }
