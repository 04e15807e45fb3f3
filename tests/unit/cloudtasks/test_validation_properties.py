"""Resource names, queue settings and tasks checked as production checks them, on their own
(no server): every accepted value round-trips, every limit is inclusive where production's
is, and every refusal is the documented status with a message naming the field."""

from __future__ import annotations

import re
from typing import Any

import grpc
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from emulators.cloudtasks import messages
from emulators.cloudtasks.errors import ApiError
from emulators.cloudtasks.validation import (
    DEFAULT_DEADLINE,
    MAX_SCHEDULE_AHEAD,
    QUEUE_NAME_FORMAT,
    TASK_NAME_FORMAT,
    QueueDefaults,
    TaskLimits,
    normalize_queue,
    normalize_task,
    page_size,
    parse_parent,
    parse_queue_name,
    queue_of_task,
    seconds,
)

PROJECT_ALPHABET = "abcXYZ019-:."
project_ids = st.text(alphabet=PROJECT_ALPHABET, min_size=1, max_size=30)
location_ids = st.text(alphabet="abcXYZ019-", min_size=1, max_size=20)
queue_ids = st.text(alphabet="abcXYZ019-", min_size=1, max_size=100)
task_ids = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=500)
NOW = 1_800_000_000.0
"""An epoch time with no fraction, as the fake clock starts."""


def assert_refused(call: Any, code: grpc.StatusCode, match: str) -> None:
    with pytest.raises(ApiError, match=match) as error:
        call()
    assert error.value.code is code
    assert error.value.message == str(error.value)


# -- resource names ------------------------------------------------------------------------


@given(project_ids, location_ids)
def test_valid_parents_are_returned_unchanged(project: str, location: str) -> None:
    parent = f"projects/{project}/locations/{location}"
    assert parse_parent(parent, None) == parent
    assert parse_parent(parent, project) == parent


@given(project_ids, project_ids, location_ids)
def test_another_project_is_permission_denied(served: str, asked: str, location: str) -> None:
    """As production answers for a project the caller cannot see, naming the project."""
    if served == asked:
        return
    assert_refused(
        lambda: parse_parent(f"projects/{asked}/locations/{location}", served),
        grpc.StatusCode.PERMISSION_DENIED,
        "^Permission denied on resource project " + re.escape(asked) + r"\.$",
    )


@pytest.mark.parametrize(
    "parent",
    ["", "projects/p", "projects/p/locations/", "projects//locations/l", "projects/p_1/locations/l",
     "projects/p/locations/l_1", "projects/p/locations/l/queues/q", "project/p/locations/l",
     "projects/p/zones/l", "projects/p/locations/l/"],
)  # fmt: skip
def test_malformed_parents_are_invalid_and_quoted(parent: str) -> None:
    assert_refused(
        lambda: parse_parent(parent, None),
        grpc.StatusCode.INVALID_ARGUMENT,
        f'parent "{parent}" must be formatted: "projects/<PROJECT_ID>/locations/<LOCATION_ID>"',
    )


@given(project_ids, location_ids, queue_ids)
def test_valid_queue_names_are_returned_unchanged(project: str, location: str, queue: str):
    name = f"projects/{project}/locations/{location}/queues/{queue}"
    assert parse_queue_name(name, project) == name
    assert_refused(
        lambda: parse_queue_name(name, project + "x"),
        grpc.StatusCode.PERMISSION_DENIED,
        "Permission denied on resource project",
    )


@pytest.mark.parametrize(
    "name",
    ["projects/p/locations/l/queues/" + "q" * 101, "projects/p/locations/l/queues/",
     "projects/p/locations/l/queues/q_1", "projects/p/locations/l/queues/q/x",
     "projects/p_1/locations/l/queues/q", "projects/p/locations/l_1/queues/q", "queues/q"],
)  # fmt: skip
def test_malformed_queue_names_are_invalid(name: str) -> None:
    """Queue ids are letters, digits and hyphens, 1 to 100 of them."""
    assert_refused(
        lambda: parse_queue_name(name, None),
        grpc.StatusCode.INVALID_ARGUMENT,
        "^" + re.escape(QUEUE_NAME_FORMAT) + "$",
    )


@given(project_ids, location_ids, queue_ids, task_ids)
def test_task_names_split_into_queue_and_id(
    project: str, location: str, queue: str, task: str
) -> None:
    queue_name = f"projects/{project}/locations/{location}/queues/{queue}"
    assert queue_of_task(f"{queue_name}/tasks/{task}", project) == (queue_name, task)


@pytest.mark.parametrize("task_id", ["", "t" * 501, "a.b", "a b", "ä"])
def test_bad_task_ids_are_invalid_and_named(task_id: str) -> None:
    """Task ids are letters, digits, hyphens and underscores, 1 to 500 of them."""
    message = (
        f'Task ID "{task_id}" can contain only letters ([A-Za-z]), numbers ([0-9]), hyphens '
        "(-), or underscores (_). Task ID must between 1 and 500 characters."
    )
    assert_refused(
        lambda: queue_of_task(f"projects/p/locations/l/queues/q/tasks/{task_id}", None),
        grpc.StatusCode.INVALID_ARGUMENT,
        "^" + re.escape(message) + "$",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [("projects/p/locations/l/queues/q", TASK_NAME_FORMAT),
     ("projects/p/locations/l/queues/q_q/tasks/t", QUEUE_NAME_FORMAT)],
)  # fmt: skip
def test_task_names_without_a_valid_queue_are_invalid(name: str, message: str) -> None:
    with pytest.raises(ApiError) as error:
        queue_of_task(name, None)
    assert (error.value.code, error.value.message) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_a_task_of_another_project_is_permission_denied() -> None:
    assert_refused(
        lambda: queue_of_task("projects/other/locations/l/queues/q/tasks/t", "mine"),
        grpc.StatusCode.PERMISSION_DENIED,
        "project other",
    )


# -- queues --------------------------------------------------------------------------------


def queue(**fields: Any) -> Any:
    """A Queue message; ``retry=...`` and ``rates=...`` fill its sub-messages."""
    made = messages.Queue(name="projects/p/locations/l/queues/q")
    for key, value in fields.pop("rates", {}).items():
        setattr(made.rate_limits, key, value)
    for key, value in fields.pop("retry", {}).items():
        field = getattr(made.retry_config, key)
        if hasattr(field, "FromNanoseconds"):
            field.FromNanoseconds(round(value * 1e9))
        else:
            setattr(made.retry_config, key, value)
    return made


@given(
    rate=st.floats(0.01, 500),
    concurrent=st.integers(1, 5000),
    attempts=st.integers(-1, 1000).filter(bool),
    doublings=st.integers(1, 30),
    low=st.integers(0, 10_000),
    extra=st.integers(0, 10_000),
)
def test_explicit_queue_settings_are_kept(
    rate: float, concurrent: int, attempts: int, doublings: int, low: int, extra: int
) -> None:
    """Values inside production's limits are kept as given (backoffs to the millisecond), and
    the burst is derived from the rate."""
    made = queue(
        rates={"max_dispatches_per_second": rate, "max_concurrent_dispatches": concurrent},
        retry={"max_attempts": attempts, "max_doublings": doublings, "min_backoff": low / 1000,
               "max_backoff": (low + extra) / 1000},
    )  # fmt: skip
    normalize_queue(made, QueueDefaults())
    limits, retry = made.rate_limits, made.retry_config
    assert limits.max_dispatches_per_second == rate
    assert limits.max_concurrent_dispatches == concurrent
    burst = 100 if rate >= 500 else 20 if rate >= 50 else 10 if rate >= 1 else 5
    assert limits.max_burst_size == burst
    assert (retry.max_attempts, retry.max_doublings) == (attempts, doublings)
    assert seconds(retry.min_backoff) == pytest.approx(low / 1000)
    assert seconds(retry.max_backoff) == pytest.approx((low + extra) / 1000)


def test_unset_queue_settings_get_the_defaults() -> None:
    defaults = QueueDefaults(max_attempts=7, min_backoff=2.5, max_backoff=60, max_doublings=3,
                             max_dispatches_per_second=42, max_concurrent_dispatches=9)  # fmt: skip
    made = queue()
    normalize_queue(made, defaults)
    limits, retry = made.rate_limits, made.retry_config
    assert (limits.max_dispatches_per_second, limits.max_concurrent_dispatches) == (42, 9)
    assert limits.max_burst_size == 10  # derived from the default rate
    assert (retry.max_attempts, retry.max_doublings) == (7, 3)
    assert (retry.min_backoff.ToNanoseconds(), seconds(retry.max_backoff)) == (2_500_000_000, 60)


def test_a_given_burst_wins_over_the_derived_one() -> None:
    made = queue(rates={"max_dispatches_per_second": 500})
    normalize_queue(made, QueueDefaults(), burst=7)
    assert made.rate_limits.max_burst_size == 7


def test_limits_are_inclusive() -> None:
    """500/s, 5000 concurrent, -1 attempts, and min_backoff == max_backoff are all allowed."""
    made = queue(
        rates={"max_dispatches_per_second": 500, "max_concurrent_dispatches": 5000},
        retry={"max_attempts": -1, "min_backoff": 5, "max_backoff": 5},
    )
    normalize_queue(made, QueueDefaults())
    assert made.retry_config.max_attempts == -1
    assert made.rate_limits.max_burst_size == 100


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rates": {"max_dispatches_per_second": 500.5}},
         r"^RateLimits\.max_dispatches_per_second must be between 0 and 500, got 500\.5\.$"),
        ({"rates": {"max_dispatches_per_second": -1}},
         r"max_dispatches_per_second must be between 0 and 500, got -1\."),
        ({"rates": {"max_concurrent_dispatches": 5001}},
         r"^RateLimits\.max_concurrent_dispatches must be between 0 and 5000, got 5001\.$"),
        ({"rates": {"max_concurrent_dispatches": -1}}, r"between 0 and 5000, got -1\."),
        ({"retry": {"max_attempts": -2}},
         r"^RetryConfig\.max_attempts must be -1 or greater, got -2\.$"),
        ({"retry": {"max_doublings": -1}}, r"^RetryConfig\.max_doublings must be >= 0, got -1\.$"),
        ({"retry": {"min_backoff": -0.001}}, r"^RetryConfig\.min_backoff must not be negative\.$"),
        ({"retry": {"max_backoff": -1}}, r"^RetryConfig\.max_backoff must not be negative\.$"),
        ({"retry": {"max_retry_duration": -1}},
         r"^RetryConfig\.max_retry_duration must not be negative\.$"),
        ({"retry": {"min_backoff": 10, "max_backoff": 9.999}},
         r"^RetryConfig\.min_backoff must be less than or equal to max_backoff\.$"),
        ({"retry": {"min_backoff": 3601}}, r"less than or equal to max_backoff"),
    ],
)  # fmt: skip
def test_out_of_range_queue_settings_are_invalid(fields: dict[str, Any], message: str) -> None:
    made = queue(**fields)
    assert_refused(
        lambda: normalize_queue(made, QueueDefaults()), grpc.StatusCode.INVALID_ARGUMENT, message
    )


# -- tasks ---------------------------------------------------------------------------------


def task(url: str = "https://example.com/hook", **http: Any) -> Any:
    made = messages.Task()
    made.http_request.url = url
    for key, value in http.items():
        if key == "headers":
            made.http_request.headers.update(value)
        elif key in ("oidc_token", "oauth_token"):
            getattr(made.http_request, key).SetInParent()
            for name, text in value.items():
                setattr(getattr(made.http_request, key), name, text)
        else:
            setattr(made.http_request, key, value)
    return made


LIMITS = TaskLimits(min_dispatch_deadline=15)
METHOD_NUMBERS = {name: number for number, name in messages.METHODS.items()}


def test_defaults_and_times_of_a_minimal_task() -> None:
    """POST, a 10-minute deadline, scheduled and created now (creation to the second), and
    output-only fields cleared."""
    made = task()
    made.dispatch_count, made.response_count, made.view = 4, 3, messages.FULL
    made.first_attempt.dispatch_time.FromSeconds(5)
    made.last_attempt.dispatch_time.FromSeconds(6)
    normalize_task(made, NOW + 0.25, LIMITS)
    assert messages.METHODS[made.http_request.http_method] == "POST"
    assert made.dispatch_deadline.ToSeconds() == DEFAULT_DEADLINE == 600
    assert made.schedule_time.ToMicroseconds() == (NOW + 0.25) * 1e6
    assert made.create_time.ToSeconds() == NOW
    assert (made.dispatch_count, made.response_count, made.view) == (0, 0, 0)
    assert not made.HasField("first_attempt")
    assert not made.HasField("last_attempt")


@given(st.floats(-MAX_SCHEDULE_AHEAD, MAX_SCHEDULE_AHEAD))
@example(MAX_SCHEDULE_AHEAD)  # exactly 30 days ahead is still accepted
def test_schedule_time_is_kept_if_future_and_moved_to_now_if_past(offset: float) -> None:
    """Up to 30 days ahead inclusive; a past schedule time becomes the creation time."""
    made = task()
    made.schedule_time.FromMicroseconds(int((NOW + offset) * 1e6))
    normalize_task(made, NOW, LIMITS)
    expected = max(int((NOW + offset) * 1e6), int(NOW * 1e6))
    assert made.schedule_time.ToMicroseconds() == expected


def test_more_than_30_days_ahead_is_invalid() -> None:
    made = task()
    made.schedule_time.FromMicroseconds(int((NOW + MAX_SCHEDULE_AHEAD) * 1e6) + 1)
    assert_refused(
        lambda: normalize_task(made, NOW, LIMITS),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"^Task\.schedule_time must be at most 30 days in the future\.$",
    )


@given(st.integers(15_000, 1_800_000), st.integers(0, 999))
def test_deadlines_within_the_limits_are_kept_to_the_millisecond(millis: int, micros: int):
    """From the floor (15 s for HTTP targets) to 30 minutes inclusive, truncated to ms."""
    made = task()
    made.dispatch_deadline.FromMicroseconds(millis * 1000 + (micros if millis < 1_800_000 else 0))
    normalize_task(made, NOW, LIMITS)
    assert made.dispatch_deadline.ToMicroseconds() == millis * 1000


@pytest.mark.parametrize("deadline_ms", [14_999, 1_800_001, 0])
def test_deadlines_outside_the_limits_are_invalid(deadline_ms: int) -> None:
    made = task()
    made.dispatch_deadline.FromMilliseconds(deadline_ms)
    assert_refused(
        lambda: normalize_task(made, NOW, LIMITS),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"^Task\.dispatch_deadline must be between 15s and 1800s for HTTP targets, got",
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_body_is_allowed_with_post_put_and_patch(method: str) -> None:
    made = task(body=b"{}", http_method=METHOD_NUMBERS[method])
    normalize_task(made, NOW, LIMITS)
    assert made.http_request.body == b"{}"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "OPTIONS"])
def test_a_body_with_other_methods_is_invalid(method: str) -> None:
    made = task(body=b"x", http_method=METHOD_NUMBERS[method])
    assert_refused(
        lambda: normalize_task(made, NOW, LIMITS),
        grpc.StatusCode.INVALID_ARGUMENT,
        f"^HttpRequest.body is allowed only with POST, PUT or PATCH, not with {method}.$",
    )


@pytest.mark.parametrize(
    ("made", "message"),
    [
        (task(url="ftp://example.com"),
         r'^HttpRequest\.url must start with "http://" or "https://", got "ftp://example\.com"\.$'),
        (task(url="example.com"), r'must start with "http://" or "https://"'),
        (task(url="http://h/" + "a" * 2075), r"^HttpRequest\.url must be at most 2083 characters"),
        (task(http_method=99), r"^HttpRequest\.http_method 99 is not a known method\.$"),
        (task(oidc_token={"audience": "a"}),
         r"^HttpRequest\.oidc_token\.service_account_email must be set\.$"),
        (task(oauth_token={"scope": "s"}),
         r"^HttpRequest\.oauth_token\.service_account_email must be set\.$"),
        (task(headers={"X-Big": "v" * (80 * 1024 - 5)}),
         r"^HttpRequest\.headers must total less than 80KB, got 81920 bytes\.$"),
        (task(body=b"x" * (1024 * 1024)), r"^Task size \d+ bytes exceeds the maximum of 1048576"),
        (messages.Task(), r"^Task\.http_request must be set: an HTTP target is required\.$"),
    ],
)  # fmt: skip
def test_invalid_tasks_are_refused_naming_the_field(made: Any, message: str) -> None:
    assert_refused(
        lambda: normalize_task(made, NOW, LIMITS), grpc.StatusCode.INVALID_ARGUMENT, message
    )


def test_a_task_of_exactly_1_mb_is_accepted_and_one_byte_more_is_not() -> None:
    """The size limit is inclusive: measured on the normalized task (defaults filled in)."""
    probe = task(body=b"x" * 900_000)
    normalize_task(probe, NOW, LIMITS)
    body = 900_000 + (1024 * 1024 - probe.ByteSize())
    exact = task(body=b"x" * body)
    normalize_task(exact, NOW, LIMITS)
    assert exact.ByteSize() == 1024 * 1024
    over = task(body=b"x" * (body + 1))
    assert_refused(
        lambda: normalize_task(over, NOW, LIMITS),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"^Task size 1048577 bytes exceeds the maximum of 1048576 bytes\.$",
    )


@pytest.mark.parametrize("name", ["X Bad", "X:Bad", "X\nBad", "É", "(x)"])
def test_a_header_name_that_is_not_a_token_is_invalid(name: str) -> None:
    """RFC 9110 §5.1: header names are tokens."""
    made = task(headers={name: "v"})
    assert_refused(
        lambda: normalize_task(made, NOW, LIMITS),
        grpc.StatusCode.INVALID_ARGUMENT,
        "^" + re.escape(f'HttpRequest.headers: "{name}" is not a valid header name.') + "$",
    )


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "\x00", "\x7f", "a\x1fb"])
def test_a_header_value_with_a_control_character_is_invalid(value: str) -> None:
    """CR, LF and other controls would split the request; tabs and spaces are allowed."""
    made = task(headers={"X-Note": value})
    message = (
        'HttpRequest.headers: the value of "X-Note" contains a control character '
        "(CR, LF, NUL...), which no HTTP request may carry."
    )
    assert_refused(
        lambda: normalize_task(made, NOW, LIMITS),
        grpc.StatusCode.INVALID_ARGUMENT,
        "^" + re.escape(message) + "$",
    )
    fine = task(headers={"X-Note": "tab\tand space ~!#"})
    normalize_task(fine, NOW, LIMITS)


def test_app_engine_targets_are_unimplemented() -> None:
    made = messages.Task()
    made.app_engine_http_request.relative_uri = "/x"
    assert_refused(
        lambda: normalize_task(made, NOW, LIMITS),
        grpc.StatusCode.UNIMPLEMENTED,
        r"^App Engine targets are not emulated",
    )


def test_limits_that_are_just_inside_are_accepted() -> None:
    """A 2083-byte URL, headers of 80KB less one byte, tokens with an account, and a task of
    just under 1 MB."""
    made = task(
        url="http://h/" + "a" * 2074,
        headers={"X-Big": "v" * (80 * 1024 - 6)},
        oidc_token={"service_account_email": "a@b.c"},
        body=b"x" * (1024 * 1024 - 90_000),
    )
    normalize_task(made, NOW, LIMITS)
    assert len(made.http_request.url) == 2083
    oauth = task(oauth_token={"service_account_email": "a@b.c", "scope": "s"})
    normalize_task(oauth, NOW, LIMITS)


@given(st.integers(0, 10_000), st.integers(1, 1000))
def test_page_size_zero_means_the_maximum_and_is_capped(requested: int, maximum: int) -> None:
    assert page_size(requested, maximum) == min(requested or maximum, maximum)
    assert_refused(
        lambda: page_size(-1 - requested, maximum),
        grpc.StatusCode.INVALID_ARGUMENT,
        r"^page_size must not be negative\.$",
    )


@given(st.integers(0, 10**6), st.integers(0, 999_999_999))
@example(0, 999_999_999)  # the largest fraction: a wrong divisor shows at the last digit
def test_seconds_of_a_duration(whole: int, nanos: int) -> None:
    """Seconds plus nanoseconds as one float, computed exactly as written."""
    duration = messages.Queue().retry_config.min_backoff
    duration.seconds, duration.nanos = whole, nanos
    assert seconds(duration) == whole + nanos / 1e9
