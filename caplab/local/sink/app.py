"""``caplab sink``: a webhook receiver with fault injection, for local runs and tests.

Every ``POST /hooks/{hook}`` is recorded (time, headers that matter, body, the status it got).
The receiver deduplicates by the ``Webhook-Id`` header (the event id, as in the Standard
Webhooks convention): the first successful delivery of an id is an *effect*, later ones are
*duplicates* — what a real receiver must do with an at-least-once sender.

Faults are set per hook with ``PUT /control/{hook}`` (so concurrent tests don't share them):

- ``fail_next``: answer the next N deliveries with ``fail_status`` (default 503);
- ``delay_seconds``: answer every delivery that much later (a slow receiver);
- ``down``: answer every delivery with 503 until cleared (a receiver that is down; it still
  answers, so the caller sees a fast failure, not a connection timeout).

``GET /hooks/{hook}`` returns the deliveries and the counts; ``DELETE /hooks/{hook}`` forgets
them and clears the faults. State is in memory: one process, one event loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from caplab.core.topology import LOCAL_PROJECT
from services.shared.app import create_app as create_service_app
from services.shared.outbound import IDEMPOTENCY_HEADER

EVENT_ID_HEADER = IDEMPOTENCY_HEADER
_RECORDED_HEADERS = (
    EVENT_ID_HEADER,
    "X-CloudTasks-TaskName",
    "X-CloudTasks-TaskRetryCount",
    "Content-Type",
)


class Faults(BaseModel):
    fail_next: int = Field(default=0, ge=0)
    fail_status: int = Field(default=503, ge=400, le=599)
    delay_seconds: float = Field(default=0.0, ge=0, le=60)
    down: bool = False


@dataclass
class Delivery:
    received_at: float
    event_id: str | None
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Hook:
    faults: Faults = field(default_factory=Faults)
    deliveries: list[Delivery] = field(default_factory=list)
    effects: dict[str, float] = field(default_factory=dict)
    """Event id -> when its first successful delivery arrived."""

    def summary(self) -> dict[str, object]:
        succeeded = [d for d in self.deliveries if d.status < 300]
        return {
            "faults": self.faults.model_dump(),
            "received": len(self.deliveries),
            "succeeded": len(succeeded),
            "effects": len(self.effects),
            "duplicates": len(succeeded) - len(self.effects),
            "event_ids": sorted(self.effects),
            "deliveries": [asdict(d) for d in self.deliveries],
        }


def create_app() -> FastAPI:
    app = create_service_app("caplab webhook sink", project=LOCAL_PROJECT)
    hooks: dict[str, Hook] = {}

    def hook_named(name: str) -> Hook:
        return hooks.setdefault(name, Hook())

    @app.post("/hooks/{name}")
    async def receive(name: str, request: Request) -> Response:
        hook = hook_named(name)
        faults = hook.faults
        if faults.delay_seconds:
            await asyncio.sleep(faults.delay_seconds)
        if faults.down:
            status = 503
        elif faults.fail_next:
            faults.fail_next -= 1
            status = faults.fail_status
        else:
            status = 200
        event_id = request.headers.get(EVENT_ID_HEADER)
        hook.deliveries.append(
            Delivery(
                received_at=time.time(),
                event_id=event_id,
                status=status,
                headers={h: request.headers[h] for h in _RECORDED_HEADERS if h in request.headers},
                body=(await request.body()).decode("utf-8", "replace"),
            )
        )
        duplicate = False
        if status < 300 and event_id is not None:
            duplicate = event_id in hook.effects
            hook.effects.setdefault(event_id, time.time())
        return Response(
            content='{"duplicate": true}' if duplicate else "{}",
            status_code=status,
            media_type="application/json",
        )

    @app.get("/hooks/{name}")
    async def summary(name: str) -> dict[str, object]:
        return hook_named(name).summary()

    @app.delete("/hooks/{name}", status_code=204)
    async def reset(name: str) -> None:
        hooks.pop(name, None)

    @app.put("/control/{name}")
    async def control(name: str, faults: Faults) -> dict[str, object]:
        hook_named(name).faults = faults
        return faults.model_dump()

    return app
