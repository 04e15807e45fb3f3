"""Fixtures for the Cloud Tasks emulator tests: an embedded emulator on a fake or the real
clock, the official client pointed at it through the one client factory, and a real HTTP
target."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.cloud import tasks_v2

from caplab.topology import LOCAL_PROJECT
from emulators.cloudtasks import CloudTasksEmulator, FakeClock, ServiceConfig, TaskLimits
from emulators.cloudtasks.target import RecordingTarget
from services.shared.clients import build_tasks_client


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
