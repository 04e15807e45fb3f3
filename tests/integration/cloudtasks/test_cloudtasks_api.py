"""The RPC surface through the official client: production's status codes and messages,
deduplication and tombstones, views, upsert, listing, IAM and Locations, and bad input that
must never take the server down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.cloud.location import locations_pb2
from google.iam.v1 import policy_pb2
from google.protobuf import field_mask_pb2

from emulators.cloudtasks import CloudTasksEmulator
from emulators.cloudtasks import messages as pb
from tests.fixtures.cloudtasks_helpers import PARENT, http_task, make_queue, unique

QUEUE_MISSING = (
    "Queue does not exist. If you just created the queue, wait at least a minute for the queue "
    "to initialize."
)
URL = "http://127.0.0.1:9/unused"


@pytest.fixture
def paused_queue(fake_client: tasks_v2.CloudTasksClient) -> tasks_v2.Queue:
    """A queue that holds its tasks (nothing is dispatched during these tests)."""
    queue = make_queue(fake_client)
    return fake_client.pause_queue(name=queue.name)


def test_named_task_deduplicated_until_its_tombstone_expires(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    paused_queue: tasks_v2.Queue,
) -> None:
    """The same name is ALREADY_EXISTS while the task exists and for ~1 h after it is gone,
    then accepted again."""
    name = f"{paused_queue.name}/tasks/event-42"
    fake_client.create_task(parent=paused_queue.name, task=http_task(URL, name=name))
    with pytest.raises(exceptions.AlreadyExists, match="Requested entity already exists"):
        fake_client.create_task(parent=paused_queue.name, task=http_task(URL, name=name))
    fake_client.delete_task(name=name)
    fake_emulator.advance(3599)
    with pytest.raises(exceptions.AlreadyExists):
        fake_client.create_task(parent=paused_queue.name, task=http_task(URL, name=name))
    with pytest.raises(exceptions.NotFound, match="existed recently"):
        fake_client.get_task(name=name)
    fake_emulator.advance(2)
    assert (
        fake_client.create_task(parent=paused_queue.name, task=http_task(URL, name=name)).name
        == name
    )


def test_unnamed_tasks_are_never_deduplicated(
    fake_client: tasks_v2.CloudTasksClient, paused_queue: tasks_v2.Queue
) -> None:
    """Tasks without a name get distinct generated ids."""
    names = {
        fake_client.create_task(parent=paused_queue.name, task=http_task(URL)).name
        for _ in range(3)
    }
    assert len(names) == 3


def test_queue_name_tombstone(
    fake_emulator: CloudTasksEmulator, fake_client: tasks_v2.CloudTasksClient
) -> None:
    """A deleted queue is NOT_FOUND with production's message, cannot be re-created for 7
    days (FAILED_PRECONDITION), and can be afterwards."""
    queue = make_queue(fake_client)
    fake_client.delete_queue(name=queue.name)
    with pytest.raises(exceptions.NotFound) as missing:
        fake_client.get_queue(name=queue.name)
    assert missing.value.message == QUEUE_MISSING
    with pytest.raises(exceptions.FailedPrecondition, match="existed too recently"):
        fake_client.create_queue(parent=PARENT, queue={"name": queue.name})
    fake_emulator.advance(7 * 24 * 3600 + 1)
    assert fake_client.create_queue(parent=PARENT, queue={"name": queue.name}).name == queue.name


def test_not_found_and_already_exists_messages(
    fake_client: tasks_v2.CloudTasksClient, paused_queue: tasks_v2.Queue
) -> None:
    """Production's wording for each missing or duplicate resource."""
    missing_queue = f"{PARENT}/queues/{unique()}"
    for call in (
        lambda: fake_client.get_queue(name=missing_queue),
        lambda: fake_client.pause_queue(name=missing_queue),
        lambda: fake_client.resume_queue(name=missing_queue),
        lambda: fake_client.purge_queue(name=missing_queue),
        lambda: fake_client.create_task(parent=missing_queue, task=http_task(URL)),
    ):
        with pytest.raises(exceptions.NotFound) as error:
            call()
        assert error.value.message == QUEUE_MISSING
    with pytest.raises(exceptions.NotFound, match=r"404 Requested entity was not found\.$"):
        fake_client.delete_queue(name=missing_queue)
    missing_task = f"{paused_queue.name}/tasks/never-created"
    for call in (
        lambda: fake_client.get_task(name=missing_task),
        lambda: fake_client.delete_task(name=missing_task),
        lambda: fake_client.run_task(name=missing_task),
    ):
        with pytest.raises(exceptions.NotFound, match=r"404 Requested entity was not found\.$"):
            call()
    with pytest.raises(exceptions.AlreadyExists, match=r"409 Queue already exists$"):
        fake_client.create_queue(parent=PARENT, queue={"name": paused_queue.name})


def _invalid_tasks(queue: str) -> list[tuple[Any, str]]:
    long_url = "http://127.0.0.1/" + "a" * 2100
    return [
        (http_task("ftp://127.0.0.1/x"), "must start with"),
        (http_task(long_url), "at most 2083"),
        (
            http_task(URL, http={"headers": {"X-Big": "v" * (80 * 1024)}}),
            "less than 80KB",
        ),
        (
            http_task(URL, http={"http_method": tasks_v2.HttpMethod.GET, "body": b"x"}),
            "only with POST, PUT or PATCH",
        ),
        (http_task(URL, dispatch_deadline=timedelta(seconds=14)), "dispatch_deadline"),
        (http_task(URL, dispatch_deadline=timedelta(minutes=31)), "dispatch_deadline"),
        (
            http_task(URL, schedule_time=datetime.now(UTC) + timedelta(days=31)),
            "30 days",
        ),
        (http_task(URL, name=f"{queue}/tasks/bad id!"), 'Task ID "bad id!" can contain only'),
        (http_task(URL, name=f"{queue}/tasks/" + "a" * 501), "between 1 and 500"),
        (
            http_task(URL, name=f"{PARENT}/queues/other/tasks/t1"),
            "must be the same as the queue name in the named task",
        ),
        (http_task(URL, http={"body": b"x" * (1024 * 1024 + 1)}), "exceeds the maximum"),
        (
            http_task(URL, http={"oidc_token": tasks_v2.OidcToken(audience="a")}),
            "service_account_email",
        ),
        (tasks_v2.Task(), "http_request must be set"),
    ]


def test_every_invalid_task_is_rejected_with_its_reason(
    fake_client: tasks_v2.CloudTasksClient, paused_queue: tasks_v2.Queue
) -> None:
    """Each spec'd CreateTask validation answers INVALID_ARGUMENT naming what is wrong."""
    for task, reason in _invalid_tasks(paused_queue.name):
        with pytest.raises(exceptions.InvalidArgument) as error:
            fake_client.create_task(parent=paused_queue.name, task=task)
        assert reason in error.value.message
    assert list(fake_client.list_tasks(parent=paused_queue.name)) == []


@pytest.mark.parametrize(
    ("queue", "reason"),
    [
        ({"name": f"{PARENT}/queues/bad_name"}, "Queue name must be formatted"),
        ({"name": f"{PARENT}/queues/" + "q" * 101}, "Queue name must be formatted"),
        ({"name": f"{PARENT}/queues/r", "rate_limits": {"max_dispatches_per_second": 501}}, "500"),
        (
            {"name": f"{PARENT}/queues/c", "rate_limits": {"max_concurrent_dispatches": 5001}},
            "5000",
        ),
        ({"name": f"{PARENT}/queues/a", "retry_config": {"max_attempts": -2}}, "-1 or greater"),
    ],
)
def test_invalid_queues_are_rejected(
    fake_client: tasks_v2.CloudTasksClient, queue: dict[str, Any], reason: str
) -> None:
    """Malformed names and out-of-range limits are INVALID_ARGUMENT."""
    with pytest.raises(exceptions.InvalidArgument, match=reason):
        fake_client.create_queue(parent=PARENT, queue=queue)


def test_app_engine_targets_are_not_emulated(
    fake_client: tasks_v2.CloudTasksClient, paused_queue: tasks_v2.Queue
) -> None:
    """An App Engine task is refused with UNIMPLEMENTED rather than accepted and never run."""
    task = tasks_v2.Task(app_engine_http_request=tasks_v2.AppEngineHttpRequest(relative_uri="/x"))
    with pytest.raises(exceptions.MethodNotImplemented, match="App Engine"):
        fake_client.create_task(parent=paused_queue.name, task=task)


def test_other_project_is_permission_denied(fake_client: tasks_v2.CloudTasksClient) -> None:
    """A project the emulator does not serve is answered as production answers for a project
    the caller cannot see."""
    with pytest.raises(exceptions.PermissionDenied, match="project someone-else"):
        list(fake_client.list_queues(parent="projects/someone-else/locations/us-central1"))


def test_views_and_defaults(
    fake_client: tasks_v2.CloudTasksClient, paused_queue: tasks_v2.Queue
) -> None:
    """BASIC (the default) omits the body, FULL returns it; deadline defaults to 10 min and
    create_time is whole seconds; headers are stored verbatim."""
    created = fake_client.create_task(
        parent=paused_queue.name,
        task=http_task(URL, http={"body": b"payload", "headers": {"X-MiXed": "1"}}),
    )
    assert created.view == tasks_v2.Task.View.BASIC
    assert created.http_request.body == b""
    assert created.dispatch_deadline == timedelta(minutes=10)
    assert created.create_time.microsecond == 0
    full = fake_client.get_task(
        request={"name": created.name, "response_view": tasks_v2.Task.View.FULL}
    )
    assert full.view == tasks_v2.Task.View.FULL
    assert full.http_request.body == b"payload"
    assert dict(full.http_request.headers) == {"X-MiXed": "1"}
    assert full.http_request.http_method == tasks_v2.HttpMethod.POST
    listed = list(
        fake_client.list_tasks(
            request={"parent": paused_queue.name, "response_view": tasks_v2.Task.View.FULL}
        )
    )
    assert [t.http_request.body for t in listed] == [b"payload"]


def test_update_queue_upserts_and_respects_the_mask(
    fake_client: tasks_v2.CloudTasksClient,
) -> None:
    """UpdateQueue creates a missing queue; with a mask only the named fields change; the
    output-only burst size follows the rate."""
    name = f"{PARENT}/queues/{unique()}"
    created = fake_client.update_queue(
        queue={"name": name, "rate_limits": {"max_dispatches_per_second": 5}}
    )
    assert created.rate_limits.max_dispatches_per_second == 5
    assert created.state == tasks_v2.Queue.State.RUNNING
    updated = fake_client.update_queue(
        queue={
            "name": name,
            "rate_limits": {"max_dispatches_per_second": 100, "max_concurrent_dispatches": 7},
            "retry_config": {"max_attempts": 3},
        },
        update_mask=field_mask_pb2.FieldMask(paths=["rate_limits.max_dispatches_per_second"]),
    )
    assert updated.rate_limits.max_dispatches_per_second == 100
    assert updated.rate_limits.max_burst_size == 20
    assert updated.rate_limits.max_concurrent_dispatches == 1000
    assert updated.retry_config.max_attempts == 100


def test_list_queues_sorted_filtered_and_paged(fake_client: tasks_v2.CloudTasksClient) -> None:
    """Queues list in name order, page by page; ``state: PAUSED`` keeps only paused ones."""
    names = sorted(make_queue(fake_client).name for _ in range(3))
    fake_client.pause_queue(name=names[1])
    listed = [q.name for q in fake_client.list_queues(request={"parent": PARENT, "page_size": 2})]
    assert listed == names
    paused = [
        q.name
        for q in fake_client.list_queues(request={"parent": PARENT, "filter": "state: PAUSED"})
    ]
    assert paused == [names[1]]


def test_iam_and_locations(fake_client: tasks_v2.CloudTasksClient) -> None:
    """Empty policy until one is set; TestIamPermissions on a missing queue grants nothing
    rather than NOT_FOUND; the Locations mixin answers."""
    queue = make_queue(fake_client)
    assert list(fake_client.get_iam_policy(resource=queue.name).bindings) == []
    policy = policy_pb2.Policy(
        bindings=[policy_pb2.Binding(role="roles/cloudtasks.enqueuer", members=["user:a@b.c"])]
    )
    fake_client.set_iam_policy(request={"resource": queue.name, "policy": policy})
    stored = fake_client.get_iam_policy(resource=queue.name)
    assert stored.bindings[0].members == ["user:a@b.c"]
    granted = fake_client.test_iam_permissions(
        resource=queue.name, permissions=["cloudtasks.tasks.create"]
    )
    assert list(granted.permissions) == ["cloudtasks.tasks.create"]
    none = fake_client.test_iam_permissions(
        resource=f"{PARENT}/queues/{unique()}", permissions=["cloudtasks.tasks.create"]
    )
    assert list(none.permissions) == []
    locations = fake_client.list_locations(
        request=locations_pb2.ListLocationsRequest(name="projects/caplab-local")
    )
    assert "us-central1" in {location.location_id for location in locations.locations}


def test_bad_input_never_kills_the_server(
    fake_emulator: CloudTasksEmulator, fake_client: tasks_v2.CloudTasksClient
) -> None:
    """Garbage bytes, unknown fields, malformed names and oversize messages each fail one
    call; the server keeps answering."""
    channel = grpc.insecure_channel(fake_emulator.address)
    try:
        create = channel.unary_unary(
            "/google.cloud.tasks.v2.CloudTasks/CreateQueue",
            request_serializer=lambda raw: raw,
            response_deserializer=pb.Queue.FromString,
        )
        with pytest.raises(grpc.RpcError) as garbage:
            create(b"\xff\xff\xff\xff not a protobuf", timeout=5)
        assert garbage.value.code() in {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
        name = f"{PARENT}/queues/{unique()}"
        request = pb.CreateQueueRequest(parent=PARENT, queue=pb.Queue(name=name))
        unknown_field = b"\xfa\x3e\x03abc"  # field 999, length-delimited: unknown to the schema
        created = create(request.SerializeToString() + unknown_field, timeout=5)
        assert created.name == name
        with pytest.raises(grpc.RpcError) as huge:
            create(b"\x0a" + b"\xff" * 3 + b"\x7f" + b"x" * (5 * 1024 * 1024), timeout=5)
        assert huge.value.code() in {
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.INTERNAL,
            grpc.StatusCode.UNKNOWN,
        }
    finally:
        channel.close()
    for bad in ("", "queues/x", f"{PARENT}/queues/ok/extra", "projects//locations//queues/"):
        with pytest.raises(exceptions.InvalidArgument):
            fake_client.get_queue(name=bad)
    with pytest.raises(exceptions.InvalidArgument):
        fake_client.get_task(name="not/a/task")
    assert fake_client.get_queue(name=name).name == name
