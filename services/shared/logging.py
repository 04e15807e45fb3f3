"""JSON logs in the shape Cloud Logging reads from a Cloud Run container's stdout.

Each record is one JSON line with ``severity``, ``message``, ``time`` (RFC 3339, UTC) and the
logger name; inside a request, ``logging.googleapis.com/trace`` is
``projects/<project>/traces/<trace-id>`` taken from the ``X-Cloud-Trace-Context`` header, so
Cloud Logging groups a request's lines under its trace. ``extra={"fields": {...}}`` adds
structured fields. The trace travels in a :mod:`contextvars` variable, which both asyncio tasks
and the threads FastAPI runs sync handlers in (via ``anyio.to_thread``) inherit.

Every line is written without the userinfo of any URL in it (``https://user:secret@host`` is
logged ``https://host``): libraries log the URLs they call (httpx logs each request at INFO),
and a webhook URL may carry credentials.

The stdlib ``logging`` module and a hand-written formatter are used (not a logging library)
because the format is eight lines of mapping and every dependency already logs through stdlib.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

TRACE_HEADER = b"x-cloud-trace-context"
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@\"']*@")
"""``scheme://userinfo@``: what :func:`without_userinfo` removes."""
TRACE_FIELD = "logging.googleapis.com/trace"

current_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_trace", default=None
)
"""The Cloud Logging trace name of the request being served, if any."""

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def without_userinfo(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed."""
    return _USERINFO.sub(r"\1", text)


def trace_name(header: str, project: str) -> str | None:
    """``"105445aa7843bc8bf206b12000100000/1;o=1"`` -> ``projects/P/traces/1054...``."""
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id:
        return None
    return f"projects/{project}/traces/{trace_id}"


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, with Cloud Logging's special fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        trace = current_trace.get()
        if trace is not None:
            entry[TRACE_FIELD] = trace
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            # Cloud Error Reporting picks up stack traces found in the message field.
            entry["message"] += "\n" + self.formatException(record.exc_info)
        return without_userinfo(json.dumps(entry, default=str))


def configure_logging(level: int | str = logging.INFO) -> None:
    """Route every logger (uvicorn's included) to one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class TraceMiddleware:
    """Pure ASGI middleware: sets :data:`current_trace` from ``X-Cloud-Trace-Context``."""

    def __init__(self, app: ASGIApp, project: str) -> None:
        self.app = app
        self.project = project

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(TRACE_HEADER)
        token = current_trace.set(
            trace_name(header.decode("latin-1"), self.project) if header else None
        )
        try:
            await self.app(scope, receive, send)
        finally:
            current_trace.reset(token)
