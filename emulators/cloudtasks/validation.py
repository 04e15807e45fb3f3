"""Resource names and request fields checked as production checks them (INVALID_ARGUMENT
with production's wording where it is known; see docs/cloud-tasks-emulator.md),
and the defaults production fills in for what a request leaves unset."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import grpc

from emulators.cloudtasks import messages
from emulators.cloudtasks.errors import ApiError, invalid
from emulators.cloudtasks.ratelimit import derived_burst

_PARENT = re.compile(r"projects/([^/]+)/locations/([^/]+)")
_PROJECT_ID = re.compile(r"[A-Za-z0-9\-:.]+")
_LOCATION_ID = re.compile(r"[A-Za-z0-9-]+")
_QUEUE = re.compile(
    r"(projects/[A-Za-z0-9\-:.]+/locations/[A-Za-z0-9-]+)/queues/([A-Za-z0-9-]{1,100})"
)
_TASK = re.compile(r"(.+)/tasks/([^/]*)")
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""RFC 9110 §5.1: a header name is a token."""
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""RFC 9110 §5.5: a field value holds visible characters, spaces and tabs only; CR and LF
would end the header (request splitting)."""

QUEUE_NAME_FORMAT = (
    'Queue name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/queues/'
    '<QUEUE_ID>".'
)
TASK_NAME_FORMAT = (
    'Task name must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>/queues/'
    '<QUEUE_ID>/tasks/<TASK_ID>".'
)
MAX_URL_LENGTH = 2083
MAX_HEADERS_BYTES = 80 * 1024
MAX_TASK_BYTES = 1024 * 1024
"""HTTP tasks: the limits table's 1 MB (the CreateTask comment's 100 KB is App Engine's)."""
MAX_SCHEDULE_AHEAD = 30 * 24 * 3600
MAX_RATE = 500.0
MAX_CONCURRENT = 5000
HTTP_DEADLINE_MAX = 30 * 60.0
DEFAULT_DEADLINE = 10 * 60.0
BODY_METHODS = {"POST", "PUT", "PATCH"}


@dataclass(frozen=True)
class QueueDefaults:
    """What a queue created through the API gets for fields left unset (commonly observed
    production values)."""

    max_attempts: int = 100
    min_backoff: float = 0.1
    max_backoff: float = 3600.0
    max_doublings: int = 16
    max_dispatches_per_second: float = 500.0
    max_concurrent_dispatches: int = 1000


def parse_parent(parent: str, project: str | None) -> str:
    """``projects/P/locations/L``; a project this emulator does not serve is PERMISSION_DENIED
    as production answers for a project the caller cannot see."""
    match = _PARENT.fullmatch(parent)
    if not match or not _PROJECT_ID.fullmatch(match[1]) or not _LOCATION_ID.fullmatch(match[2]):
        raise invalid(
            f'Invalid resource field value in the request: parent "{parent}" must be formatted: '
            '"projects/<PROJECT_ID>/locations/<LOCATION_ID>".'
        )
    check_project(match[1], project)
    return parent


def check_project(project_id: str, project: str | None) -> None:
    if project is not None and project_id != project:
        raise ApiError(
            grpc.StatusCode.PERMISSION_DENIED,
            f"Permission denied on resource project {project_id}.",
        )


def parse_queue_name(name: str, project: str | None) -> str:
    match = _QUEUE.fullmatch(name)
    if not match:
        raise invalid(QUEUE_NAME_FORMAT)
    check_project(name.split("/")[1], project)
    return name


def queue_of_task(task_name: str, project: str | None) -> tuple[str, str]:
    """``(queue name, task id)`` of a full task name."""
    match = _TASK.fullmatch(task_name)
    if not match:
        raise invalid(TASK_NAME_FORMAT)
    queue_name = parse_queue_name(match[1], project)
    task_id = match[2]
    if not _TASK_ID.fullmatch(task_id):
        raise invalid(
            f'Task ID "{task_id}" can contain only letters ([A-Za-z]), numbers ([0-9]), hyphens '
            "(-), or underscores (_). Task ID must between 1 and 500 characters."
        )
    return queue_name, task_id


def seconds(duration: Any) -> float:
    return duration.seconds + duration.nanos / 1e9


def normalize_queue(queue: Any, defaults: QueueDefaults, burst: int | None = None) -> None:
    """Validate ``queue``'s rate limits and retry config in place, fill what is unset with the
    defaults and derive the output-only ``max_burst_size``."""
    rate = queue.rate_limits.max_dispatches_per_second
    if rate < 0 or rate > MAX_RATE:
        raise invalid(
            "RateLimits.max_dispatches_per_second must be between 0 and "
            f"{MAX_RATE:g}, got {rate:g}."
        )
    concurrent = queue.rate_limits.max_concurrent_dispatches
    if concurrent < 0 or concurrent > MAX_CONCURRENT:
        raise invalid(
            f"RateLimits.max_concurrent_dispatches must be between 0 and {MAX_CONCURRENT}, got "
            f"{concurrent}."
        )
    retry = queue.retry_config
    if retry.max_attempts < -1:
        raise invalid(f"RetryConfig.max_attempts must be -1 or greater, got {retry.max_attempts}.")
    if retry.max_doublings < 0:
        raise invalid(f"RetryConfig.max_doublings must be >= 0, got {retry.max_doublings}.")
    for field in ("min_backoff", "max_backoff", "max_retry_duration"):
        if seconds(getattr(retry, field)) < 0:
            raise invalid(f"RetryConfig.{field} must not be negative.")
    if not rate:
        queue.rate_limits.max_dispatches_per_second = defaults.max_dispatches_per_second
    if not concurrent:
        queue.rate_limits.max_concurrent_dispatches = defaults.max_concurrent_dispatches
    queue.rate_limits.max_burst_size = burst or derived_burst(
        queue.rate_limits.max_dispatches_per_second
    )
    if not retry.max_attempts:
        retry.max_attempts = defaults.max_attempts
    if not retry.HasField("min_backoff"):
        retry.min_backoff.FromNanoseconds(int(defaults.min_backoff * 1e9))
    if not retry.HasField("max_backoff"):
        retry.max_backoff.FromNanoseconds(int(defaults.max_backoff * 1e9))
    if not retry.max_doublings:
        retry.max_doublings = defaults.max_doublings
    if seconds(retry.min_backoff) > seconds(retry.max_backoff):
        raise invalid("RetryConfig.min_backoff must be less than or equal to max_backoff.")


@dataclass(frozen=True)
class TaskLimits:
    min_dispatch_deadline: float = 15.0
    """Production's floor for HTTP targets; tests lower it to miss deadlines quickly."""


def normalize_task(task: Any, now: float, limits: TaskLimits) -> None:
    """Validate a task for CreateTask in place: target, headers, body, deadline, schedule time
    and size; clear output-only fields and apply production's defaults and truncations."""
    if task.HasField("app_engine_http_request"):
        raise ApiError(
            grpc.StatusCode.UNIMPLEMENTED,
            "App Engine targets are not emulated; use an HTTP target (http_request).",
        )
    if not task.HasField("http_request"):
        raise invalid("Task.http_request must be set: an HTTP target is required.")
    request = task.http_request
    url = request.url
    if not url.startswith(("http://", "https://")):
        raise invalid(f'HttpRequest.url must start with "http://" or "https://", got "{url}".')
    if len(url.encode()) > MAX_URL_LENGTH:
        raise invalid(f"HttpRequest.url must be at most {MAX_URL_LENGTH} characters.")
    if not request.http_method:
        request.http_method = messages.POST
    method = messages.METHODS.get(request.http_method)
    if method is None:
        raise invalid(f"HttpRequest.http_method {request.http_method} is not a known method.")
    if request.body and method not in BODY_METHODS:
        raise invalid(
            f"HttpRequest.body is allowed only with POST, PUT or PATCH, not with {method}."
        )
    for key, value in request.headers.items():
        if not _HEADER_NAME.fullmatch(key):
            raise invalid(f'HttpRequest.headers: "{key}" is not a valid header name.')
        if _HEADER_VALUE_FORBIDDEN.search(value):
            raise invalid(
                f'HttpRequest.headers: the value of "{key}" contains a control character '
                "(CR, LF, NUL...), which no HTTP request may carry."
            )
    header_bytes = sum(len(k.encode()) + len(v.encode()) for k, v in request.headers.items())
    if header_bytes >= MAX_HEADERS_BYTES:
        raise invalid(f"HttpRequest.headers must total less than 80KB, got {header_bytes} bytes.")
    for token in ("oidc_token", "oauth_token"):
        if request.HasField(token) and not getattr(request, token).service_account_email:
            raise invalid(f"HttpRequest.{token}.service_account_email must be set.")
    if task.HasField("dispatch_deadline"):
        deadline = seconds(task.dispatch_deadline)
        if not limits.min_dispatch_deadline <= deadline <= HTTP_DEADLINE_MAX:
            raise invalid(
                f"Task.dispatch_deadline must be between {limits.min_dispatch_deadline:g}s and "
                f"{HTTP_DEADLINE_MAX:g}s for HTTP targets, got {deadline:g}s."
            )
        task.dispatch_deadline.FromMilliseconds(task.dispatch_deadline.ToMilliseconds())
    else:
        task.dispatch_deadline.FromSeconds(int(DEFAULT_DEADLINE))
    schedule = task.schedule_time.ToMicroseconds() / 1e6 if task.HasField("schedule_time") else 0
    if schedule > now + MAX_SCHEDULE_AHEAD:
        raise invalid("Task.schedule_time must be at most 30 days in the future.")
    task.schedule_time.FromMicroseconds(int(max(schedule, now) * 1e6))
    task.create_time.FromSeconds(int(now))
    for output_only in (
        "dispatch_count",
        "response_count",
        "first_attempt",
        "last_attempt",
        "view",
    ):
        task.ClearField(output_only)
    size = task.ByteSize()
    if size > MAX_TASK_BYTES:
        raise invalid(f"Task size {size} bytes exceeds the maximum of {MAX_TASK_BYTES} bytes.")


def page_size(requested: int, maximum: int) -> int:
    if requested < 0:
        raise invalid("page_size must not be negative.")
    return min(requested or maximum, maximum)
