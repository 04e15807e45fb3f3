"""Fixtures for the Cloud Tasks emulator tests: an embedded emulator on a fake or the real
clock, the official client pointed at it through the one client factory, and a real HTTP
target."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from google.cloud import tasks_v2

from caplab.topology import LOCAL_PROJECT
from emulators.cloudtasks import CloudTasksEmulator, FakeClock, ServiceConfig, TaskLimits
from services.shared.clients import build_tasks_client

from .target import RecordingTarget

PARENT = f"projects/{LOCAL_PROJECT}/locations/us-central1"


@pytest.fixture
def target() -> Iterator[RecordingTarget]:
    with RecordingTarget() as running:
        yield running


@pytest.fixture
def fake_emulator() -> Iterator[CloudTasksEmulator]:
    """An emulator whose clock moves only when the test (or ``run_until_idle``) moves it."""
    with CloudTasksEmulator(clock=FakeClock()) as emulator:
        yield emulator


@pytest.fixture
def real_emulator() -> Iterator[CloudTasksEmulator]:
    """An emulator on the system clock that accepts dispatch deadlines down to 0.1 s."""
    config = ServiceConfig(project=LOCAL_PROJECT, task_limits=TaskLimits(min_dispatch_deadline=0.1))
    with CloudTasksEmulator(config=config) as emulator:
        yield emulator


def _client(emulator: CloudTasksEmulator) -> Iterator[tasks_v2.CloudTasksClient]:
    with build_tasks_client(emulator.address) as client:
        yield client


@pytest.fixture
def fake_client(fake_emulator: CloudTasksEmulator) -> Iterator[tasks_v2.CloudTasksClient]:
    yield from _client(fake_emulator)


@pytest.fixture
def real_client(real_emulator: CloudTasksEmulator) -> Iterator[tasks_v2.CloudTasksClient]:
    yield from _client(real_emulator)


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
