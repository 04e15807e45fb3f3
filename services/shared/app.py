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
  the former;
- JSON logs carrying the request's Cloud Trace (:mod:`services.shared.logging`).

Shutdown on SIGTERM is uvicorn's: stop accepting, finish in-flight requests, run the lifespan's
exit; :mod:`services.shared.runner` bounds that below Cloud Run's 10 s grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from google.api_core import exceptions as google_exceptions
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from services.shared.logging import TraceMiddleware
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
    **fastapi_kwargs: Any,
) -> FastAPI:
    """A FastAPI app with problem+json errors, ``/healthz``, ``/readyz`` and trace logging.

    ``fastapi_kwargs`` go to :class:`FastAPI` (``lifespan``, ``version``, ``description``).
    """
    app = FastAPI(title=title, **fastapi_kwargs)
    app.add_middleware(TraceMiddleware, project=project)

    @app.exception_handler(Problem)
    async def _problem(request: Request, problem: Problem) -> Response:
        return problem.response(instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        return validation_problem(error).response(instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
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
            except Exception as error:  # any failure means "not ready"; say which
                detail = f"not ready: {type(error).__name__}: {error}"
                return unavailable(detail).response(instance=request.url.path)
        return JSONResponse({"status": "ready"})

    return app
