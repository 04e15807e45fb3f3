"""The 16 RPCs of ``google.cloud.tasks.v2.CloudTasks`` and the Locations mixin, over the
emulator's store and scheduler: production's validation, status codes, messages and views
(docs/cloud-tasks-emulator.md lists the sources and the divergences)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.location import locations_pb2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2, field_mask_pb2

from emulators.cloudtasks import errors, messages
from emulators.cloudtasks.errors import ApiError
from emulators.cloudtasks.ratelimit import TokenBucket
from emulators.cloudtasks.scheduler import Scheduler
from emulators.cloudtasks.store import QueueRecord, TaskRecord, Tombstones
from emulators.cloudtasks.validation import (
    QueueDefaults,
    TaskLimits,
    normalize_queue,
    normalize_task,
    page_size,
    parse_parent,
    parse_queue_name,
    queue_of_task,
)

LOCATIONS = ("us-central1", "us-east1", "europe-west1", "asia-northeast1")
"""What ListLocations reports; any well-formed location id is accepted in resource names."""
_OUTPUT_ONLY_QUEUE_FIELDS = ("name", "state", "purge_time", "rate_limits.max_burst_size")


@dataclass(frozen=True)
class ServiceConfig:
    project: str | None
    """The one project served (others are PERMISSION_DENIED); None accepts any."""
    task_tombstone_seconds: float = 3600.0
    queue_tombstone_seconds: float = 7 * 24 * 3600.0
    attempt_log_size: int = 100_000
    """How many recent attempts the attempt log keeps (bounded for long-running emulators)."""
    queue_defaults: QueueDefaults = field(default_factory=QueueDefaults)
    task_limits: TaskLimits = field(default_factory=TaskLimits)


class CloudTasksService:
    def __init__(self, config: ServiceConfig, scheduler: Scheduler) -> None:
        self.config = config
        self.scheduler = scheduler
        self.queues: dict[str, QueueRecord] = scheduler.queues
        self.queue_tombstones = Tombstones(config.queue_tombstone_seconds)

    @property
    def _now(self) -> float:
        return self.scheduler.clock.now()

    def reset(self) -> None:
        """Forget every queue, task, tombstone and attempt."""
        self.scheduler.cancel_in_flight()
        self.queues.clear()
        self.queue_tombstones.clear()
        self.scheduler.task_tombstones.clear()
        self.scheduler.attempts.clear()

    # --- lookups ---------------------------------------------------------------------------

    def _queue(self, name: str) -> QueueRecord:
        record = self.queues.get(parse_queue_name(name, self.config.project))
        if record is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, errors.QUEUE_NOT_FOUND)
        return record

    def _task(self, name: str) -> tuple[QueueRecord, TaskRecord]:
        queue_name, _ = queue_of_task(name, self.config.project)
        queue = self._queue(queue_name)
        record = queue.tasks.get(name)
        if record is None:
            if self.scheduler.task_tombstones.holds(name, self._now):
                raise ApiError(grpc.StatusCode.NOT_FOUND, errors.TASK_GONE)
            raise ApiError(grpc.StatusCode.NOT_FOUND, errors.ENTITY_NOT_FOUND)
        return queue, record

    # --- queues ----------------------------------------------------------------------------

    def ListQueues(self, request: Any) -> Any:
        parent = parse_parent(request.parent, self.config.project)
        state = _state_filter(request.filter)
        names = sorted(
            name
            for name, record in self.queues.items()
            if name.startswith(parent + "/queues/")
            and (state is None or record.queue.state == state)
        )
        page, token = _page(names, request.page_token, page_size(request.page_size, 9800))
        return messages.ListQueuesResponse(
            queues=[self.queues[name].queue for name in page], next_page_token=token
        )

    def GetQueue(self, request: Any) -> Any:
        return self._queue(request.name).queue

    def CreateQueue(self, request: Any) -> Any:
        parent = parse_parent(request.parent, self.config.project)
        queue = messages.Queue()
        queue.CopyFrom(request.queue)
        name = parse_queue_name(queue.name, self.config.project)
        if not name.startswith(parent + "/queues/"):
            raise errors.invalid(
                f"The queue name ('{name}') must be in the parent location ('{parent}')."
            )
        if name in self.queues:
            raise ApiError(grpc.StatusCode.ALREADY_EXISTS, errors.QUEUE_EXISTS)
        if self.queue_tombstones.holds(name, self._now):
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, errors.QUEUE_TOO_RECENT)
        return self._store_new_queue(queue).queue

    def _store_new_queue(self, queue: Any) -> QueueRecord:
        for output_only in ("state", "purge_time"):
            queue.ClearField(output_only)
        normalize_queue(queue, self.config.queue_defaults)
        queue.state = messages.RUNNING
        limits = queue.rate_limits
        record = QueueRecord(
            queue=queue,
            bucket=TokenBucket(limits.max_dispatches_per_second, limits.max_burst_size, self._now),
        )
        self.queues[queue.name] = record
        return record

    def UpdateQueue(self, request: Any) -> Any:
        """Upsert: a missing queue is created. An empty mask updates every field; output-only
        fields (state, purge_time, max_burst_size) are ignored."""
        name = parse_queue_name(request.queue.name, self.config.project)
        record = self.queues.get(name)
        if record is None:
            if self.queue_tombstones.holds(name, self._now):
                raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, errors.QUEUE_TOO_RECENT)
            queue = messages.Queue()
            queue.CopyFrom(request.queue)
            return self._store_new_queue(queue).queue
        mask = request.update_mask
        if not mask.IsValidForDescriptor(messages.Queue.DESCRIPTOR):
            raise errors.invalid(f"update_mask has a path Queue does not have: {list(mask.paths)}.")
        paths = [p for p in mask.paths if p not in _OUTPUT_ONLY_QUEUE_FIELDS]
        updated = messages.Queue()
        updated.CopyFrom(record.queue)
        if paths:
            field_mask_pb2.FieldMask(paths=paths).MergeMessage(
                request.queue, updated, replace_message_field=True
            )
        else:
            for descriptor in messages.Queue.DESCRIPTOR.fields:
                field_name = descriptor.name
                if field_name in ("name", "state", "purge_time"):
                    continue
                updated.ClearField(field_name)
                if descriptor.message_type is None:
                    setattr(updated, field_name, getattr(request.queue, field_name))
                elif request.queue.HasField(field_name):
                    getattr(updated, field_name).CopyFrom(getattr(request.queue, field_name))
        updated.rate_limits.max_burst_size = 0
        normalize_queue(updated, self.config.queue_defaults)
        record.queue = updated
        limits = updated.rate_limits
        record.bucket.reconfigure(
            limits.max_dispatches_per_second, limits.max_burst_size, self._now
        )
        self.scheduler.wake()
        return updated

    def DeleteQueue(self, request: Any) -> Any:
        name = parse_queue_name(request.name, self.config.project)
        if self.queues.pop(name, None) is None:
            raise ApiError(grpc.StatusCode.NOT_FOUND, errors.ENTITY_NOT_FOUND)
        self.queue_tombstones.add(name, self._now)
        return empty_pb2.Empty()

    def PurgeQueue(self, request: Any) -> Any:
        record = self._queue(request.name)
        now = self._now
        for task in [t for t in record.tasks.values() if t.created_at <= now]:
            self.scheduler.remove(record, task, now)
        record.queue.purge_time.FromMicroseconds(int(now * 1e6))
        return record.queue

    def PauseQueue(self, request: Any) -> Any:
        record = self._queue(request.name)
        record.queue.state = messages.PAUSED
        return record.queue

    def ResumeQueue(self, request: Any) -> Any:
        record = self._queue(request.name)
        record.queue.state = messages.RUNNING
        self.scheduler.wake()
        return record.queue

    # --- IAM -------------------------------------------------------------------------------

    def GetIamPolicy(self, request: Any) -> Any:
        record = self._queue(request.resource)
        return record.iam_policy or policy_pb2.Policy()

    def SetIamPolicy(self, request: Any) -> Any:
        record = self._queue(request.resource)
        policy = policy_pb2.Policy()
        policy.CopyFrom(request.policy)
        policy.etag = hashlib.sha256(policy.SerializeToString()).digest()[:8]
        record.iam_policy = policy
        return policy

    def TestIamPermissions(self, request: Any) -> Any:
        """Every permission is granted on an existing queue; a missing one grants none (not
        NOT_FOUND, as in production)."""
        try:
            self._queue(request.resource)
        except ApiError:
            return iam_policy_pb2.TestIamPermissionsResponse()
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(request.permissions))

    # --- tasks -----------------------------------------------------------------------------

    def ListTasks(self, request: Any) -> Any:
        record = self._queue(request.parent)
        names = sorted(record.tasks)
        page, token = _page(names, request.page_token, page_size(request.page_size, 1000))
        return messages.ListTasksResponse(
            tasks=[_view(record.tasks[name].task, request.response_view) for name in page],
            next_page_token=token,
        )

    def GetTask(self, request: Any) -> Any:
        _, record = self._task(request.name)
        return _view(record.task, request.response_view)

    def CreateTask(self, request: Any) -> Any:
        queue = self._queue(request.parent)
        task = messages.Task()
        task.CopyFrom(request.task)
        now = self._now
        if task.name:
            task_queue, _ = queue_of_task(task.name, self.config.project)
            if task_queue != queue.name:
                raise errors.invalid(
                    f"The queue name from request ('{queue.name}') must be the same as the "
                    f"queue name in the named task ('{task_queue}')."
                )
            if task.name in queue.tasks or self.scheduler.task_tombstones.holds(task.name, now):
                raise ApiError(grpc.StatusCode.ALREADY_EXISTS, errors.ENTITY_EXISTS)
        else:
            # Production's generated ids are long decimal numbers; never deduplicated.
            task.name = f"{queue.name}/tasks/{secrets.randbelow(10**19):019d}"
        normalize_task(task, now, self.config.task_limits)
        record = TaskRecord(task=task, created_at=now)
        queue.tasks[task.name] = record
        queue.schedule(record)
        self.scheduler.wake()
        return _view(task, request.response_view)

    def DeleteTask(self, request: Any) -> Any:
        queue, record = self._task(request.name)
        self.scheduler.remove(queue, record, self._now)
        return empty_pb2.Empty()

    def RunTask(self, request: Any) -> Any:
        """Dispatch now, whatever the queue's state, bucket or concurrency; the returned task
        is as of dispatch."""
        queue, record = self._task(request.name)
        queue.unschedule(record)
        self.scheduler.start_attempt(queue, record, run_task=True)
        return _view(record.task, request.response_view)

    # --- Locations mixin -------------------------------------------------------------------

    def ListLocations(self, request: Any) -> Any:
        project = request.name.removeprefix("projects/")
        if not request.name.startswith("projects/") or "/" in project:
            raise errors.invalid('name must be formatted: "projects/<PROJECT_ID>".')
        return locations_pb2.ListLocationsResponse(
            locations=[_location(project, location) for location in LOCATIONS]
        )

    def GetLocation(self, request: Any) -> Any:
        parts = request.name.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "locations":
            raise errors.invalid('name must be formatted: "projects/<PROJECT_ID>/locations/<ID>".')
        if parts[3] not in LOCATIONS:
            raise ApiError(grpc.StatusCode.NOT_FOUND, errors.ENTITY_NOT_FOUND)
        return _location(parts[1], parts[3])


def _location(project: str, location: str) -> Any:
    return locations_pb2.Location(
        name=f"projects/{project}/locations/{location}", location_id=location
    )


def _view(task: Any, view: int) -> Any:
    """The task as returned under ``view`` (BASIC by default): BASIC leaves out the body."""
    shown = messages.Task()
    shown.CopyFrom(task)
    shown.view = view or messages.BASIC
    if shown.view == messages.BASIC and shown.HasField("http_request"):
        shown.http_request.ClearField("body")
    return shown


def _state_filter(expression: str) -> int | None:
    """The one filter production documents for ListQueues: ``state: PAUSED`` (or RUNNING,
    DISABLED)."""
    if not expression.strip():
        return None
    key, _, value = expression.partition(":")
    state_names = messages.Queue.State.keys()
    if key.strip() != "state" or value.strip() not in state_names:
        raise errors.invalid(f'Unsupported filter "{expression}"; only "state: <STATE>" is.')
    return messages.Queue.State.Value(value.strip())


def _page(names: list[str], token: str, size: int) -> tuple[list[str], str]:
    """One page of ``names`` after the name encoded in ``token``."""
    start = 0
    if token:
        try:
            start = int(token)
        except ValueError:
            raise errors.invalid("Invalid page_token.") from None
    end = start + size
    return names[start:end], str(end) if end < len(names) else ""
