"""Who is calling: the verified Google identity behind each request, for the log.

In the cloud a money service is never public: Cloud Run lets a request in only with a
Google-signed ID token of a member holding ``roles/run.invoker`` on the service, and passes
the ``Authorization`` header on. The service verifies that token itself as well
(:class:`CallerMiddleware`), for two reasons: the identity it logs is then one it checked,
not a header it trusts, and the check still holds if invoker IAM is ever switched off
(``invokerIamDisabled``, which the policy pack refuses too).

Configured by ``CAPLAB_CALLER_AUDIENCE`` (comma-separated: the service's custom audience and
its URL, the audience ``caplab load --target`` puts in its tokens), ``_ISSUER`` and
``_CERTS_URL``; on Cloud Run a service that verifies callers refuses to start without it.
Locally nothing is configured and every caller is :data:`ANONYMOUS`.

Every request except the health paths (:data:`OPEN_PATHS`: Cloud Run's probes carry no
token) then needs a valid token, or it is answered 401 problem+json. The identity is in
``request.state.caller``; handlers take it as a dependency (``caller: CallerDep``).

Authorization stays service-to-service: any identity Cloud Run lets in may act on any
account. Per-account authorization (which end user may move which account's money) is out of
scope (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.shared.oidc import OidcVerifier, identity
from services.shared.problems import unauthenticated

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/health", "/ready"})
"""The health paths, which answer only "ok", "ready" or "not ready": Cloud Run's probes call
the first two without a token; monitors use the others through the URL."""


@dataclass(frozen=True)
class Caller:
    identity: str
    """The token's verified ``email`` (a user or a service account), else ``sub:<id>``."""
    verified: bool


ANONYMOUS = Caller("anonymous", verified=False)
"""The caller when caller verification is off (locally) or on an open path."""


class CallerMiddleware:
    """Pure ASGI middleware: sets ``scope["state"]["caller"]``, and answers 401 to a request
    without a valid token when ``verifier`` has an audience."""

    def __init__(self, app: ASGIApp, verifier: OidcVerifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        caller = ANONYMOUS
        if self.verifier.enabled and scope["path"] not in OPEN_PATHS:
            header = dict(scope["headers"]).get(b"authorization")
            claims = await self.verifier.claims_async(header.decode("latin-1") if header else None)
            if claims is None:
                response = unauthenticated().response(instance=scope["path"])
                await response(scope, receive, send)
                return
            caller = Caller(identity(claims), verified=True)
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)


def current_caller(request: Request) -> Caller:
    """The request's caller (see :class:`CallerMiddleware`)."""
    return getattr(request.state, "caller", ANONYMOUS)


CallerDep = Annotated[Caller, Depends(current_caller)]
"""A handler parameter giving the request's :class:`Caller`."""
