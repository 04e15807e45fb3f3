"""Helpers for the Cloud Tasks emulator tests: unique queues made through the official client,
HTTP tasks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from google.cloud import tasks_v2

from caplab.topology import LOCAL_PROJECT

PARENT = f"projects/{LOCAL_PROJECT}/locations/us-central1"


def unique(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_queue(
    client: tasks_v2.CloudTasksClient,
    rate: float = 500,
    concurrent: int = 1000,
    max_attempts: int = 100,
    min_backoff: float = 0.1,
    max_backoff: float = 3600,
    max_doublings: int = 16,
    max_retry_duration: float = 0,
) -> tasks_v2.Queue:
    """A new queue with a unique name and the given limits, created through the client."""
    return client.create_queue(
        parent=PARENT,
        queue=tasks_v2.Queue(
            name=f"{PARENT}/queues/{unique()}",
            rate_limits=tasks_v2.RateLimits(
                max_dispatches_per_second=rate, max_concurrent_dispatches=concurrent
            ),
            retry_config=tasks_v2.RetryConfig(
                max_attempts=max_attempts,
                min_backoff=timedelta(seconds=min_backoff),
                max_backoff=timedelta(seconds=max_backoff),
                max_doublings=max_doublings,
                max_retry_duration=timedelta(seconds=max_retry_duration),
            ),
        ),
    )


def http_task(url: str, **fields: Any) -> tasks_v2.Task:
    """An HTTP task to ``url`` (POST by default) with any other Task fields given."""
    request = {"url": url, **fields.pop("http", {})}
    return tasks_v2.Task(http_request=tasks_v2.HttpRequest(**request), **fields)
