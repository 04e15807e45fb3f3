"""caplab's Cloud Tasks v2 emulator: a gRPC server the official ``google-cloud-tasks`` client
reaches over an insecure channel, dispatching HTTP tasks with production's rate limits, retry
schedule, headers and OIDC tokens (behaviour and sources: docs/cloud-tasks-emulator.md).

Run it with ``python -m emulators.cloudtasks`` (``caplab emulators up`` does), or embed it::

    with CloudTasksEmulator(clock=FakeClock()) as emulator:
        client = build_tasks_client(emulator.address)
        ...
        emulator.run_until_idle()
"""

from __future__ import annotations

from emulators.cloudtasks.clock import FakeClock, SystemClock
from emulators.cloudtasks.emulator import CloudTasksEmulator
from emulators.cloudtasks.scheduler import AttemptRecord
from emulators.cloudtasks.service import ServiceConfig
from emulators.cloudtasks.validation import QueueDefaults, TaskLimits

__all__ = [
    "AttemptRecord",
    "CloudTasksEmulator",
    "FakeClock",
    "QueueDefaults",
    "ServiceConfig",
    "SystemClock",
    "TaskLimits",
]
