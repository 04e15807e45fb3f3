"""RFC 9457 problem details: the one error shape every caplab service answers with.

Raise :class:`Problem` anywhere in a handler; the app factory's handlers turn it (and
FastAPI's own validation and routing errors) into an ``application/problem+json`` response.
Extra members (``field``, ``valid``...) travel in ``extensions``, as RFC 9457 §3.2 allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://caplab.dev/problems/"


class Problem(Exception):
    """An HTTP error answered as problem+json.

    ``kind`` names the problem type (``insufficient-funds``), made into the ``type`` URI;
    ``headers`` are added to the response (``Retry-After`` for 503s).
    """

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        body.update(self.extensions)
        return body

    def response(self, instance: str | None = None) -> JSONResponse:
        return JSONResponse(
            self.body(instance),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_MEDIA_TYPE,
        )


def invalid_field(field: str, detail: str, **extensions: Any) -> Problem:
    """422 naming the offending request field (``query.staleness``, ``body.amount_cents``)."""
    return Problem(422, "invalid-request", detail, field=field, **extensions)


def unavailable(detail: str, retry_after_seconds: int = 1) -> Problem:
    """503 with ``Retry-After``: a dependency is unreachable or timed out; try again."""
    return Problem(
        503,
        "dependency-unavailable",
        detail,
        headers={"Retry-After": str(retry_after_seconds)},
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem+json answers for ``statuses``."""
    schema = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "field": {"type": "string"},
        },
        "required": ["type", "title", "status", "detail"],
    }
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


def unauthenticated() -> Problem:
    """401 for a push or task request without a valid ID token for this service."""
    return Problem(
        401,
        "unauthenticated",
        "this endpoint needs a Google-signed ID token for this service in Authorization",
        headers={"WWW-Authenticate": "Bearer"},
    )
