"""Google ID tokens for deployed Cloud Run services (``caplab load --target``).

Cloud Run with IAM checks ``Authorization: Bearer <ID token>`` whose audience is the service
URL. :meth:`IdTokenAuth.headers` gives that header for a request's URL, fetching one token per
audience from a *token source* and reusing it until shortly before it expires. The default
source is google-auth's ``id_token.fetch_id_token`` (service-account or metadata-server
credentials); tests pass their own source, so nothing here contacts Google unless asked to.

Fetching is blocking: :meth:`IdTokenAuth.prefetch` gets every token before the load starts so
the event loop never stalls on it mid-run (a run shorter than the token lifetime never
refreshes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import jwt

TokenSource = Callable[[str], str]
"""audience → ID token."""

REFRESH_MARGIN = 300.0
"""Seconds before expiry at which a token is replaced."""
DEFAULT_LIFETIME = 3600.0


def google_id_token(audience: str) -> str:
    """An ID token for ``audience`` from the ambient Google credentials."""
    import google.auth.transport.requests
    import google.oauth2.id_token

    token = google.oauth2.id_token.fetch_id_token(
        google.auth.transport.requests.Request(), audience
    )
    return str(token)


def audience_of(url: str) -> str:
    """Cloud Run's audience: the service's base URL (scheme, host and explicit port)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _expiry(token: str) -> float:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        return float(claims["exp"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return time.time() + DEFAULT_LIFETIME


class IdTokenAuth:
    def __init__(self, source: TokenSource = google_id_token) -> None:
        self._source = source
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, audience: str) -> str:
        with self._lock:
            cached = self._tokens.get(audience)
            if cached is None or cached[1] - REFRESH_MARGIN < time.time():
                token = self._source(audience)
                cached = self._tokens[audience] = (token, _expiry(token))
            return cached[0]

    def prefetch(self, urls: Iterable[str]) -> None:
        for url in urls:
            self.token(audience_of(url))

    def headers(self, url: str) -> dict[str, str]:
        """The ``Authorization`` header for a request to ``url``."""
        return {"Authorization": f"Bearer {self.token(audience_of(url))}"}
