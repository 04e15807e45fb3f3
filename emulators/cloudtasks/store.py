"""What the emulator holds: queues with their tasks and dispatch state, and the name
tombstones that make production's deduplication and re-creation rules observable."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

from emulators.cloudtasks import messages
from emulators.cloudtasks.backoff import RetryPolicy
from emulators.cloudtasks.ratelimit import TokenBucket
from emulators.cloudtasks.validation import seconds

_SEQUENCE = itertools.count()


@dataclass
class TaskRecord:
    task: Any
    """The full ``google.cloud.tasks.v2.Task`` (views are cut from it on the way out)."""
    created_at: float
    failures: int = 0
    """Failed attempts: the X-CloudTasks-TaskRetryCount of the next attempt."""
    executions: int = 0
    """Responses other than 5xx: the X-CloudTasks-TaskExecutionCount of the next attempt."""
    previous_response: int | None = None
    first_attempt_at: float | None = None
    generation: int = 0
    """Bumped on every reschedule; heap entries of older generations are stale."""

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def schedule_time(self) -> float:
        return self.task.schedule_time.ToMicroseconds() / 1e6


@dataclass
class QueueRecord:
    queue: Any
    """The ``google.cloud.tasks.v2.Queue`` as clients see it."""
    bucket: TokenBucket
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    in_flight: int = 0
    iam_policy: Any | None = None
    _heap: list[tuple[float, int, str, int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.queue.name

    @property
    def running(self) -> bool:
        return self.queue.state == messages.RUNNING

    @property
    def policy(self) -> RetryPolicy:
        retry = self.queue.retry_config
        return RetryPolicy(
            max_attempts=retry.max_attempts,
            min_backoff=seconds(retry.min_backoff),
            max_backoff=seconds(retry.max_backoff),
            max_doublings=retry.max_doublings,
            max_retry_duration=seconds(retry.max_retry_duration),
        )

    def schedule(self, record: TaskRecord) -> None:
        """(Re)enter ``record`` in the dispatch order at its ``schedule_time``."""
        record.generation += 1
        heapq.heappush(
            self._heap, (record.schedule_time, next(_SEQUENCE), record.name, record.generation)
        )

    def unschedule(self, record: TaskRecord) -> None:
        record.generation += 1

    def next_due(self) -> TaskRecord | None:
        """The scheduled task with the earliest ``schedule_time`` (stale entries dropped)."""
        while self._heap:
            _, _, name, generation = self._heap[0]
            record = self.tasks.get(name)
            if record is not None and record.generation == generation:
                return record
            heapq.heappop(self._heap)
        return None

    def pop_due(self) -> None:
        heapq.heappop(self._heap)


class Tombstones:
    """Names that were used recently, each until its expiry time.

    Every name of one instance gets the same period, so insertion order is expiry order and
    each :meth:`add` drops the expired names at the front: a long-running emulator at 500
    tasks/s holds one hour of names, not every name it ever saw."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._until: dict[str, float] = {}

    def add(self, name: str, now: float) -> None:
        self._until.pop(name, None)
        self._until[name] = now + self.period
        while self._until:
            oldest = next(iter(self._until))
            if self._until[oldest] > now:
                break
            del self._until[oldest]

    def holds(self, name: str, now: float) -> bool:
        until = self._until.get(name)
        return until is not None and until > now

    def __len__(self) -> int:
        return len(self._until)

    def clear(self) -> None:
        self._until.clear()
