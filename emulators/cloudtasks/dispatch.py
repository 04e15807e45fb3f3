"""One HTTP attempt of an HTTP task: the headers Cloud Tasks puts on it (§3.7 of the spec) and
the request itself, bounded by the task's ``dispatch_deadline``.

Requests go through aiohttp rather than httpx: on this 2-core machine ``httpx.AsyncClient``
delivered 80-240 requests/s at 10-100 concurrent requests against a target that serves 1,100/s,
aiohttp 400-760/s (loadtest/bench_tasks.py measures the emulator end to end)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from emulators.cloudtasks import messages
from emulators.cloudtasks.tokens import TokenSigner

USER_AGENT = "Google-Cloud-Tasks"
_COMPUTED = {"host", "content-length", "user-agent"}
_RESERVED_PREFIXES = ("x-google-", "x-appengine-")
_OAUTH_DEFAULT_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class AttemptContext:
    """What the X-CloudTasks-* headers of one attempt report."""

    queue_id: str
    task_id: str
    eta: float
    retry_count: int
    """Failed attempts so far, whatever the reason."""
    execution_count: int
    """Responses received so far, excluding 5xx."""
    previous_response: int | None
    """HTTP status of the previous attempt (None when it got no response)."""


def dispatch_headers(request: Any, context: AttemptContext, signer: TokenSigner) -> dict[str, str]:
    """The task's stored headers (minus those Cloud Tasks computes or reserves), the
    X-CloudTasks-* headers, the forced User-Agent and, for ``oidc_token``/``oauth_token``, an
    Authorization header that replaces the user's. No Content-Type is ever added."""
    headers = {
        key: value
        for key, value in request.headers.items()
        if key.lower() not in _COMPUTED and not key.lower().startswith(_RESERVED_PREFIXES)
    }
    headers.update(
        {
            "X-CloudTasks-QueueName": context.queue_id,
            "X-CloudTasks-TaskName": context.task_id,
            "X-CloudTasks-TaskRetryCount": str(context.retry_count),
            "X-CloudTasks-TaskExecutionCount": str(context.execution_count),
            "X-CloudTasks-TaskETA": f"{context.eta:.6f}",
            "User-Agent": USER_AGENT,
        }
    )
    if context.retry_count > 0:
        if context.previous_response is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(context.previous_response)
        headers["X-CloudTasks-TaskRetryReason"] = ""
    token = _authorization(request, signer)
    if token is not None:
        for key in [k for k in headers if k.lower() == "authorization"]:
            del headers[key]
        headers["Authorization"] = f"Bearer {token}"
    return headers


REDACTED = "Bearer <redacted>"


def loggable(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` as the attempt log keeps them: an ``Authorization`` value (the OIDC or
    OAuth token) is replaced by :data:`REDACTED`."""
    return {k: REDACTED if k.lower() == "authorization" else v for k, v in headers.items()}


def _authorization(request: Any, signer: TokenSigner) -> str | None:
    if request.HasField("oidc_token"):
        oidc = request.oidc_token
        return signer.id_token(oidc.service_account_email, oidc.audience or request.url)
    if request.HasField("oauth_token"):
        # Production sends a Google OAuth access token; locally an emulator-signed JWT whose
        # audience is the scope stands in for it (nothing local can mint a real one).
        oauth = request.oauth_token
        return signer.id_token(oauth.service_account_email, oauth.scope or _OAUTH_DEFAULT_SCOPE)
    return None


@dataclass(frozen=True)
class Response:
    status: int | None
    """None when no response arrived: deadline passed or the target was unreachable."""
    error: str | None = None


class HttpDispatcher:
    """Sends attempts over one pooled ``aiohttp`` session (redirects followed, as for HTTP
    targets in production; the redirect is not a separate attempt). Content-Type is never
    added automatically: only a header the task carries is sent."""

    def __init__(self) -> None:
        self._session = aiohttp.ClientSession(
            # Idle connections are dropped after 1.5 s, before common servers drop them
            # (gunicorn 2 s, uvicorn and Node 5 s): reusing one the server is closing would
            # fail an attempt the target never saw.
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=1.5),
            timeout=aiohttp.ClientTimeout(total=None),
            skip_auto_headers=("Content-Type",),
            auto_decompress=False,
            trust_env=False,
        )

    async def send(self, request: Any, headers: Mapping[str, str], deadline: float) -> Response:
        """One attempt; the deadline bounds the whole exchange, not each socket operation."""
        method = messages.METHODS[request.http_method]
        try:
            async with (
                asyncio.timeout(deadline),
                self._session.request(
                    method, request.url, headers=dict(headers), data=request.body or None
                ) as response,
            ):
                await response.read()
                return Response(response.status)
        except TimeoutError:
            return Response(None, "DEADLINE_EXCEEDED")
        except aiohttp.ClientError as error:
            return Response(None, f"UNAVAILABLE: {type(error).__name__}: {error}")
        except ValueError as error:
            # A request aiohttp refuses to build (CreateTask validation should have refused
            # it first): a failed attempt the retry policy ends, never a dead attempt.
            return Response(None, f"UNAVAILABLE: invalid request: {error}")

    async def close(self) -> None:
        await self._session.close()
