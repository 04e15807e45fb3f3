"""``caplab service relay``: the outbox relay as a long-running worker with a tiny HTTP face.

The HTTP side exists for Cloud Run (a container must listen on ``$PORT``; deploy with
min-instances=1 and CPU always allocated so the loop runs between requests): ``/healthz``,
``/readyz`` (Spanner reachable) and ``/stats`` (counters, commit-to-publish delay, the current
back-off, the poll interval and the lease). Two threads started and stopped by the app's
lifespan do the work: the lease keeper (:mod:`services.relay.lease`) and the relay loop
(:mod:`services.relay.outbox`), which publishes only while this process holds the lease.
SIGTERM stops both and releases the lease, so a successor takes over at once; a SIGKILL is
safe too: the lease expires and the successor publishes whatever was not stamped.
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
from services.relay.lease import Lease
from services.relay.outbox import OutboxRelay
from services.relay.pacing import Backoff, PollInterval
from services.relay.reads import Reads
from services.relay.sessions import RelayDatabase
from services.relay.settings import RelaySettings
from services.shared.app import create_app as create_service_app
from services.shared.transactions import TransactionRunner

STAMP_DEADLINE = timedelta(seconds=30)
"""Bound on one relay transaction (a lease step, or a batch stamped published or parked)."""


def create_app(settings: RelaySettings | None = None) -> FastAPI:
    settings = settings or RelaySettings.from_environ()
    clients = ClientFactory(settings.gcp)
    database = RelayDatabase(
        settings.gcp.spanner_database,
        clients.spanner.instance(settings.gcp.spanner_instance),
        database_role=settings.gcp.spanner_database_role,
    )
    runner = TransactionRunner(database, STAMP_DEADLINE, settings.transactions)
    call_timeout = settings.call_timeout.total_seconds()
    reads = Reads(database, call_timeout)
    initial = settings.backoff_initial.total_seconds()
    cap = settings.backoff_max.total_seconds()
    duration = settings.lease.total_seconds()
    # While it holds the lease the keeper must retry well within a renewal period.
    lease_backoff = Backoff(initial, min(cap, duration / 3))
    lease = Lease(runner, reads, settings.holder, duration, lease_backoff, call_timeout)
    relay = OutboxRelay(
        runner,
        reads,
        lease,
        clients.publisher,
        settings.gcp.topic_path(TOPOLOGY.topics[0]),
        poll=PollInterval(
            settings.poll_interval.total_seconds(), settings.idle_poll_interval.total_seconds()
        ),
        backoff=Backoff(initial, cap),
        publish_timeout=call_timeout,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        workers = [
            threading.Thread(target=lease.run, args=(stop,), name="relay-lease", daemon=True),
            threading.Thread(target=relay.run, args=(stop,), name="outbox-relay", daemon=True),
        ]
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            stop.set()
            lease.interrupt()
            for worker in reversed(workers):  # the relay first: its last stamp needs the lease
                worker.join(timeout=5)
            lease.release()
            reads.close()

    app = create_service_app(
        "caplab outbox relay",
        project=settings.gcp.project,
        readiness=lambda: reads.query("SELECT 1"),
        lifespan=lifespan,
    )

    @app.get("/stats", tags=["operations"], summary="What the relay published, and how fast")
    async def stats() -> dict[str, Any]:
        return relay.snapshot_stats()

    return app
