"""Dispatch: which task goes out when, what happens after each attempt, and the attempt log.

Every queue keeps its tasks ordered by ``schedule_time``. A running queue sends a due task
when a token is left in its bucket and it has fewer than ``max_concurrent_dispatches``
requests in flight. After an attempt: 2xx deletes the task (its name stays tombstoned); any
other outcome is a failure, retried after the queue's backoff unless the stop rule says
otherwise (then the task is deleted as permanently failed). RunTask bypasses pause, bucket and
concurrency. Everything runs on the emulator's event loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions as api_exceptions

from emulators.cloudtasks.backoff import RETENTION_SECONDS, retry_delay, should_stop
from emulators.cloudtasks.clock import Clock
from emulators.cloudtasks.dispatch import (
    AttemptContext,
    HttpDispatcher,
    Response,
    dispatch_headers,
    loggable,
)
from emulators.cloudtasks.store import QueueRecord, TaskRecord, Tombstones
from emulators.cloudtasks.tokens import TokenSigner
from emulators.cloudtasks.validation import seconds

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptRecord:
    """One dispatch attempt, as the emulator saw it (times from the emulator's clock)."""

    queue: str
    task: str
    number: int
    """1 for the first attempt of the task."""
    schedule_time: float
    dispatch_time: float
    response_time: float
    status: int | None
    """HTTP status, or None when no response arrived."""
    error: str | None
    """Why no response: ``DEADLINE_EXCEEDED`` or ``UNAVAILABLE: ...``."""
    headers: dict[str, str]
    """The headers sent, the ``Authorization`` token replaced by ``Bearer <redacted>``."""
    run_task: bool
    """Dispatched by RunTask rather than by the schedule."""

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def rpc_status(response: Response) -> Any:
    """The ``google.rpc.Status`` production records in ``Attempt.response_status``."""
    from google.rpc import status_pb2

    if response.status is None:
        code = (
            grpc.StatusCode.DEADLINE_EXCEEDED
            if response.error == "DEADLINE_EXCEEDED"
            else grpc.StatusCode.UNAVAILABLE
        )
        return status_pb2.Status(code=code.value[0], message=response.error or "")
    if 200 <= response.status < 300:
        return status_pb2.Status(code=0)
    error = api_exceptions.from_http_status(response.status, f"HTTP {response.status}")
    code = error.grpc_status_code or grpc.StatusCode.UNKNOWN
    return status_pb2.Status(code=code.value[0], message=f"HTTP status {response.status}")


class Scheduler:
    def __init__(
        self,
        queues: dict[str, QueueRecord],
        task_tombstones: Tombstones,
        clock: Clock,
        signer: TokenSigner,
        attempt_log_size: int,
    ) -> None:
        self.queues = queues
        self.task_tombstones = task_tombstones
        self.clock = clock
        self.signer = signer
        self.attempts: deque[AttemptRecord] = deque(maxlen=attempt_log_size)
        """The most recent attempts, oldest first."""
        self.dispatcher = HttpDispatcher()
        self.in_flight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    # --- the loop --------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Dispatch due tasks forever; sleep until the next thing can happen or a change."""
        while True:
            self._wake.clear()
            next_at = self.dispatch_due()
            timeout = None if next_at is None else self.clock.real_delay(next_at - self.clock.now())
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def dispatch_due(self) -> float | None:
        """Start every attempt allowed now; return when the next one may be (None: only a
        change — a new task, a completion, a resume — can make one due)."""
        now = self.clock.now()
        next_at = math.inf
        for queue in list(self.queues.values()):
            if not queue.running:
                continue
            limit = queue.queue.rate_limits.max_concurrent_dispatches
            while (record := queue.next_due()) is not None:
                if record.schedule_time > now:
                    next_at = min(next_at, record.schedule_time)
                    break
                if queue.in_flight >= limit:
                    break
                if not queue.bucket.try_take(now):
                    next_at = min(next_at, queue.bucket.next_token_at(now))
                    break
                queue.pop_due()
                queue.unschedule(record)
                self.start_attempt(queue, record, run_task=False)
        return None if next_at == math.inf else next_at

    # --- attempts --------------------------------------------------------------------------

    def start_attempt(self, queue: QueueRecord, record: TaskRecord, run_task: bool) -> None:
        now = self.clock.now()
        task = record.task
        task.dispatch_count += 1
        if record.first_attempt_at is None:
            record.first_attempt_at = now
            task.first_attempt.dispatch_time.FromMicroseconds(int(now * 1e6))
        context = AttemptContext(
            queue_id=queue.name.rsplit("/", 1)[1],
            task_id=record.name.rsplit("/", 1)[1],
            eta=record.schedule_time,
            retry_count=record.failures,
            execution_count=record.executions,
            previous_response=record.previous_response,
        )
        headers = dispatch_headers(task.http_request, context, self.signer)
        queue.in_flight += 1
        attempt = asyncio.get_running_loop().create_task(
            self._attempt(queue, record, headers, now, task.dispatch_count, run_task)
        )
        self.in_flight.add(attempt)
        attempt.add_done_callback(self.in_flight.discard)

    async def _attempt(
        self,
        queue: QueueRecord,
        record: TaskRecord,
        headers: dict[str, str],
        dispatched_at: float,
        number: int,
        run_task: bool,
    ) -> None:
        schedule_time = record.schedule_time
        deadline = seconds(record.task.dispatch_deadline)
        try:
            response = await self.dispatcher.send(record.task.http_request, headers, deadline)
        finally:
            queue.in_flight -= 1
            self.wake()
        now = self.clock.now()
        self.attempts.append(
            AttemptRecord(
                queue=queue.name,
                task=record.name,
                number=number,
                schedule_time=schedule_time,
                dispatch_time=dispatched_at,
                response_time=now,
                status=response.status,
                error=response.error,
                headers=loggable(headers),
                run_task=run_task,
            )
        )
        if self.queues.get(queue.name) is not queue or queue.tasks.get(record.name) is not record:
            return  # deleted or purged while in flight: the outcome changes nothing
        self._record_outcome(record, response, dispatched_at, now)
        policy = queue.policy
        outcome = response.status if response.status is not None else response.error
        if response.status is not None and 200 <= response.status < 300:
            _log.debug("%s attempt %d: %s", record.name, number, outcome)
            self.remove(queue, record, now)
            return
        record.failures += 1
        if response.status is not None and response.status < 500:
            record.executions += 1
        record.previous_response = response.status
        age = now - (record.first_attempt_at or now)
        delay = retry_delay(record.failures, policy)
        # RunTask's documented retry time is "the time RunTask was called plus the delay".
        retry_at = (dispatched_at if run_task else now) + delay
        if (
            should_stop(record.failures, age, policy)
            or retry_at > record.created_at + RETENTION_SECONDS
        ):
            _log.info("%s attempt %d: %s; no more retries", record.name, number, outcome)
            self.remove(queue, record, now)
            return
        _log.info("%s attempt %d: %s; retry in %.3fs", record.name, number, outcome, delay)
        record.task.schedule_time.FromMicroseconds(int(retry_at * 1e6))
        queue.schedule(record)

    @staticmethod
    def _record_outcome(
        record: TaskRecord, response: Response, dispatched_at: float, now: float
    ) -> None:
        last = record.task.last_attempt
        last.Clear()
        last.schedule_time.CopyFrom(record.task.schedule_time)
        last.dispatch_time.FromMicroseconds(int(dispatched_at * 1e6))
        if response.status is not None:
            record.task.response_count += 1
            last.response_time.FromMicroseconds(int(now * 1e6))
        last.response_status.CopyFrom(rpc_status(response))

    def remove(self, queue: QueueRecord, record: TaskRecord, now: float) -> None:
        """Delete a task (done, failed for good, deleted or purged); its name stays taken for
        the task tombstone period."""
        queue.unschedule(record)
        queue.tasks.pop(record.name, None)
        self.task_tombstones.add(record.name, now)

    # --- lifecycle -------------------------------------------------------------------------

    def cancel_in_flight(self) -> None:
        for attempt in list(self.in_flight):
            attempt.cancel()

    async def close(self) -> None:
        self.cancel_in_flight()
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        await self.dispatcher.close()
