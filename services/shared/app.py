"""The app factory every caplab HTTP service is built with.

:func:`create_app` returns a FastAPI app that already has what Cloud Run and the team expect:
- errors as RFC 9457 ``application/problem+json``: :class:`~services.shared.problems.Problem`,
  request validation (422 naming the field, e.g. ``body.amount_cents``, and listing every
  error), malformed JSON, unknown routes and methods, and — never a stack trace — anything
  unexpected (500, logged with its traceback);
- a Google API that is unreachable or timed out (``ServiceUnavailable``, ``DeadlineExceeded``,
  a retry deadline) becomes 503 with ``Retry-After``: the caller may try again;
- ``/healthz`` (liveness: the process answers) and ``/readyz`` (readiness: the ``readiness``
  callable, e.g. a Spanner ``SELECT 1``, succeeded within its deadline), also served as
  ``/health`` and ``/ready``: Cloud Run reserves some paths ending in ``z`` on a service's
  URL (https://cloud.google.com/run/docs/known-issues), so people and monitors use the
  latter through the URL while Cloud Run's probes, which reach the container directly, keep
  the former. Readiness answers ``ready`` or ``not ready`` and nothing else: why is logged,
  never answered (an exception's text names resources);
- a request body cap (:class:`HttpSettings`, :class:`BodyLimitMiddleware`): a larger body,
  declared or streamed, is a 413 problem and is read no further;
- caller verification when ``callers`` has an audience (:mod:`services.shared.identity`);
- JSON logs carrying the request's Cloud Trace (:mod:`services.shared.logging`).

Shutdown on SIGTERM is uvicorn's: stop accepting, finish in-flight requests, run the lifespan's
exit; :mod:`services.shared.runner` bounds that below Cloud Run's 10 s grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from google.api_core import exceptions as google_exceptions
from starlette.config import Config
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caplab.core.environment import config_from
from services.shared.identity import CallerMiddleware
from services.shared.logging import TraceMiddleware
from services.shared.oidc import OidcVerifier
from services.shared.problems import Problem, unavailable

log = logging.getLogger(__name__)

Readiness = Callable[[], object]
"""A blocking probe that raises when the service cannot serve (run in a worker thread)."""

DEPENDENCY_UNAVAILABLE: tuple[type[Exception], ...] = (
    google_exceptions.ServiceUnavailable,
    google_exceptions.DeadlineExceeded,
    google_exceptions.RetryError,
    TimeoutError,
)
"""Errors meaning "a dependency did not answer in time": 503 + Retry-After, not 500."""


DEFAULT_MAX_BODY_BYTES = 64 * 1024
"""Every body a caplab service takes (a transfer, a webhook, a push envelope, a task) is a
few kilobytes at most."""
HTTP_ERROR_KINDS = {404: "not-found", 405: "method-not-allowed", 413: "content-too-large"}


@dataclass(frozen=True)
class HttpSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_config(cls, config: Config) -> HttpSettings:
        """``CAPLAB_HTTP_MAX_BODY_BYTES`` (default 64 KiB)."""
        return cls(
            max_body_bytes=config(
                "CAPLAB_HTTP_MAX_BODY_BYTES", cast=int, default=DEFAULT_MAX_BODY_BYTES
            )
        )


class BodyLimitMiddleware:
    """Pure ASGI middleware capping request bodies at ``max_bytes``: a larger
    ``Content-Length`` is answered 413 at once; a body streamed past the cap (chunked) stops
    being read, and the read raises a 413 ``HTTPException`` the app answers as a problem.

    Hand-written because FastAPI's own ``max_body_size`` answers a declared oversize body
    with a plain-text 413, replacing the problem+json one this API promises."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> Problem:
        return Problem(413, "content-too-large", f"the request body exceeds {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large().response(instance=scope["path"])(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise StarletteHTTPException(413, self._too_large().detail)
            return message

        await self.app(scope, limited, send)


def field_name(location: tuple[int | str, ...] | list[int | str]) -> str:
    """A validation error location as a dotted field name: ``("body", "amount_cents")`` ->
    ``body.amount_cents``; a JSON syntax error's byte offset is dropped (``body``)."""
    parts = [str(part) for part in location]
    if len(parts) == 2 and parts[0] == "body" and parts[1].isdigit():
        return "body"
    return ".".join(parts)


def validation_problem(error: RequestValidationError) -> Problem:
    errors = [
        {"field": field_name(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in error.errors()
    ]
    first = errors[0] if errors else {"field": "request", "message": "invalid request"}
    malformed = any(e.get("type") == "json_invalid" for e in error.errors())
    kind = "malformed-json" if malformed else "invalid-request"
    detail = f"{first['field']}: {first['message']}"
    return Problem(422, kind, detail, field=first["field"], errors=errors)


def create_app(
    title: str,
    *,
    project: str,
    readiness: Readiness | None = None,
    readiness_timeout: float = 2.0,
    http: HttpSettings | None = None,
    callers: OidcVerifier | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """A FastAPI app with problem+json errors, ``/healthz``, ``/readyz``, a body cap, caller
    verification (when ``callers`` has an audience) and trace logging.

    ``http`` defaults to :meth:`HttpSettings.from_config` over the environment;
    ``fastapi_kwargs`` go to :class:`FastAPI` (``lifespan``, ``version``, ``description``).
    """
    http = http or HttpSettings.from_config(config_from())
    app = FastAPI(title=title, **fastapi_kwargs)
    app.add_middleware(BodyLimitMiddleware, max_bytes=http.max_body_bytes)
    if callers is not None:
        app.add_middleware(CallerMiddleware, verifier=callers)
    # Added last, so outermost: a 401 from the caller check is logged with its trace too.
    app.add_middleware(TraceMiddleware, project=project)

    @app.exception_handler(Problem)
    async def _problem(request: Request, problem: Problem) -> Response:
        return problem.response(instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        return validation_problem(error).response(instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        kind = HTTP_ERROR_KINDS.get(error.status_code, "http-error")
        problem = Problem(error.status_code, kind, str(error.detail), headers=error.headers)
        return problem.response(instance=request.url.path)

    for error_type in DEPENDENCY_UNAVAILABLE:

        @app.exception_handler(error_type)
        async def _unavailable(request: Request, error: Exception) -> Response:
            log.warning("dependency unavailable: %s: %s", type(error).__name__, error)
            return unavailable(
                f"a dependency did not answer in time ({type(error).__name__})"
            ).response(instance=request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.error("unhandled error on %s", request.url.path, exc_info=error)
        problem = Problem(500, "internal-error", "an unexpected error occurred; it was logged")
        return problem.response(instance=request.url.path)

    @app.get("/health", tags=["operations"], summary="Liveness: the process answers")
    @app.get("/healthz", tags=["operations"], summary="Liveness (for probes)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    not_ready: dict[int | str, dict[str, Any]] = {
        503: {"description": "not ready", "content": {"application/problem+json": {}}}
    }

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness: dependencies reachable",
        responses=not_ready,
    )
    @app.get("/readyz", tags=["operations"], summary="Readiness (for probes)", responses=not_ready)
    async def readyz(request: Request) -> Response:
        if readiness is not None:
            try:
                with anyio.fail_after(readiness_timeout):
                    await anyio.to_thread.run_sync(readiness, abandon_on_cancel=True)
            except Exception as error:  # any failure means "not ready"; the log says which
                log.warning("not ready: %s: %s", type(error).__name__, error)
                return unavailable("not ready").response(instance=request.url.path)
        return JSONResponse({"status": "ready"})

    return app
