"""``caplab service relay``: the outbox relay as a long-running worker with a tiny HTTP face.

The HTTP side exists for Cloud Run (a container must listen on ``$PORT``; deploy with
min-instances=1 and CPU always allocated so the loop runs between requests): ``/healthz``,
``/readyz`` (Spanner reachable) and ``/stats`` (published count, commit-to-publish delay).
The relay loop runs in a thread started and stopped by the app's lifespan, so SIGTERM stops it
cleanly; a SIGKILL is safe too (see :mod:`services.relay.outbox`).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from caplab.core.clients import ClientFactory
from caplab.core.topology import TOPOLOGY
from services.relay.outbox import OutboxRelay
from services.relay.settings import RelaySettings
from services.shared.app import create_app as create_service_app
from services.shared.transactions import TransactionRunner

STAMP_DEADLINE = timedelta(seconds=30)
"""Bound on one stamping transaction (a batch of published rows marked published)."""


def create_app(settings: RelaySettings | None = None) -> FastAPI:
    settings = settings or RelaySettings.from_environ()
    clients = ClientFactory(settings.gcp)
    relay = OutboxRelay(
        TransactionRunner(clients.spanner_database, STAMP_DEADLINE, settings.transactions),
        clients.publisher,
        settings.gcp.topic_path(TOPOLOGY.topics[0]),
        poll_interval=settings.poll_interval,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = threading.Thread(target=relay.run, args=(stop,), name="outbox-relay", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(timeout=5)

    def ping() -> None:
        with clients.spanner_database.snapshot() as snapshot:
            list(snapshot.execute_sql("SELECT 1"))

    app = create_service_app(
        "caplab outbox relay", project=settings.gcp.project, readiness=ping, lifespan=lifespan
    )

    @app.get("/stats", tags=["operations"], summary="What the relay published, and how fast")
    async def stats() -> dict[str, Any]:
        return relay.snapshot_stats()

    return app
