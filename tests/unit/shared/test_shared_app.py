"""The shared app factory: problem+json errors, health and readiness, trace-aware JSON logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Query, Request
from google.api_core.exceptions import ServiceUnavailable
from pydantic import BaseModel, Field

from services.shared.app import HttpSettings, create_app
from services.shared.logging import CloudLoggingFormatter, current_trace, trace_name
from services.shared.problems import PROBLEM_MEDIA_TYPE, Problem


class Payment(BaseModel):
    amount_cents: int = Field(gt=0)


def build(ready: bool = True) -> httpx.AsyncClient:
    def readiness() -> None:
        if not ready:
            raise ConnectionError("database unreachable")

    app = create_app("probe", project="demo-project", readiness=readiness)

    @app.post("/pay")
    def pay(payment: Payment) -> dict[str, int]:
        return {"amount_cents": payment.amount_cents}

    @app.get("/broke")
    def broke() -> None:
        raise RuntimeError("secret internals")

    @app.get("/down")
    def down() -> None:
        raise ServiceUnavailable("spanner is gone")

    @app.get("/refuse")
    def refuse(why: str = Query("x")) -> None:
        raise Problem(409, "conflict-demo", f"refused: {why}", field="why")

    @app.get("/trace")
    def trace() -> dict[str, str | None]:
        return {"trace": current_trace.get()}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://probe")


async def test_validation_error_names_the_field() -> None:
    """An invalid body field is a 422 problem whose `field` names it."""
    response = await build().post("/pay", json={"amount_cents": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["field"] == "body.amount_cents"
    assert body["status"] == 422
    assert body["type"].endswith("/invalid-request")


async def test_malformed_json_is_a_problem_about_the_body() -> None:
    """A body that is not JSON is reported as malformed JSON in `body`, not a 500."""
    response = await build().post(
        "/pay", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/malformed-json")
    assert response.json()["field"] == "body"


async def test_problem_keeps_status_and_extensions() -> None:
    """A raised Problem answers its status with its extension members."""
    response = await build().get("/refuse", params={"why": "because"})
    assert response.status_code == 409
    assert response.json()["detail"] == "refused: because"
    assert response.json()["field"] == "why"


async def test_unknown_route_is_a_404_problem() -> None:
    """Routing errors use the same problem shape."""
    response = await build().get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


async def test_unexpected_error_hides_the_trace() -> None:
    """An unexpected exception is a 500 problem that does not leak its message."""
    response = await build().get("/broke")
    assert response.status_code == 500
    assert "secret internals" not in response.text


async def test_unavailable_dependency_is_503_with_retry_after() -> None:
    """A Google API ServiceUnavailable becomes 503 with Retry-After."""
    response = await build().get("/down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


async def test_health_and_readiness(caplog: pytest.LogCaptureFixture) -> None:
    """/healthz always answers; /readyz reflects the readiness probe and says only "ready" or
    "not ready": why is in the log, never in the answer."""
    assert (await build().get("/healthz")).json() == {"status": "ok"}
    assert (await build(ready=True).get("/readyz")).json() == {"status": "ready"}
    with caplog.at_level(logging.WARNING):
        not_ready = await build(ready=False).get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["detail"] == "not ready"
    assert "database unreachable" not in not_ready.text
    assert "ConnectionError: database unreachable" in caplog.text


async def test_trace_header_reaches_the_request_context() -> None:
    """X-Cloud-Trace-Context becomes the Cloud Logging trace name inside the handler."""
    response = await build().get("/trace", headers={"X-Cloud-Trace-Context": "abc123/1;o=1"})
    assert response.json() == {"trace": "projects/demo-project/traces/abc123"}
    assert (await build().get("/trace")).json() == {"trace": None}


def test_log_lines_have_cloud_logging_fields() -> None:
    """A record formats as one JSON object with severity, message, time, trace and fields."""
    record = logging.LogRecord("caplab", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.fields = {"account": "a1"}
    token = current_trace.set(trace_name("t-1/2", "p"))
    try:
        line = json.loads(CloudLoggingFormatter().format(record))
    finally:
        current_trace.reset(token)
    assert line["severity"] == "WARNING"
    assert line["message"] == "hello you"
    assert line["logging.googleapis.com/trace"] == "projects/p/traces/t-1"
    assert line["account"] == "a1"
    assert line["time"].endswith("+00:00")


def test_log_lines_never_carry_url_userinfo() -> None:
    """A URL's userinfo is dropped from the message and the fields (httpx logs the URLs it
    calls); the rest of the line, e-mail addresses included, is kept."""
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "POST %s", ("https://hook:s3cret@h.example/x",), None
    )
    record.fields = {"url": "http://token@10.0.0.1:8080/y", "caller": "a@b.example"}
    line = json.loads(CloudLoggingFormatter().format(record))
    assert line["message"] == "POST https://h.example/x"
    assert line["url"] == "http://10.0.0.1:8080/y"
    assert line["caller"] == "a@b.example"


async def test_bodies_over_the_cap_are_413_problems() -> None:
    """A declared or streamed body past the cap is a 413 problem+json, even on a route that
    would not read it (refused on its Content-Length alone); one at the cap passes."""
    app = create_app("probe", project="p", http=HttpSettings(max_body_bytes=100))

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/pay")
    def pay(payment: Payment) -> dict[str, int]:
        return {"amount_cents": payment.amount_cents}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"x" * 50

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        assert (await client.post("/echo", content=b"x" * 100)).json() == {"size": 100}
        oversize = (
            ("/echo", b"x" * 101),
            ("/pay", b" " * 200),
            ("/echo", chunks()),
            ("/pay", chunks()),
        )
        for path, content in oversize:
            response = await client.post(path, content=content)
            assert response.status_code == 413, path
            assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
            assert response.json()["type"].endswith("/content-too-large")
        unread = await client.request("GET", "/healthz", content=b"x" * 101)
        assert unread.status_code == 413
