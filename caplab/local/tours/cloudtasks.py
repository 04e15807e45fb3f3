"""A two-second tour of the Cloud Tasks emulator for ``make demo``: the documented retry
schedule, the dispatch headers across 503 → 404 → 200, name deduplication and its tombstone,
and an OIDC token verified against the emulator's JWKS — all through the official client, on
an embedded emulator whose fake clock lets hours pass instantly.

    python -m caplab.local.tours.cloudtasks
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
from google.api_core.exceptions import AlreadyExists
from google.cloud import tasks_v2
from rich.console import Console
from rich.table import Table

from caplab.core.clients import build_tasks_client
from caplab.core.topology import LOCAL_PROJECT
from emulators.cloudtasks.backoff import RetryPolicy, retry_delay
from emulators.cloudtasks.clock import FakeClock
from emulators.cloudtasks.emulator import CloudTasksEmulator
from emulators.cloudtasks.target import RecordingTarget

PARENT = f"projects/{LOCAL_PROJECT}/locations/us-central1"
DOCUMENTED = RetryPolicy(
    max_attempts=8, min_backoff=10, max_backoff=300, max_doublings=3, max_retry_duration=0
)
ACCOUNT = "notifier@caplab-local.iam.gserviceaccount.com"


def _queue(client: tasks_v2.CloudTasksClient, name: str, policy: RetryPolicy) -> str:
    return client.create_queue(
        parent=PARENT,
        queue=tasks_v2.Queue(
            name=f"{PARENT}/queues/{name}",
            retry_config=tasks_v2.RetryConfig(
                max_attempts=policy.max_attempts,
                min_backoff=timedelta(seconds=policy.min_backoff),
                max_backoff=timedelta(seconds=policy.max_backoff),
                max_doublings=policy.max_doublings,
            ),
        ),
    ).name


def _backoff(
    console: Console,
    emulator: CloudTasksEmulator,
    client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    queue = _queue(client, "tour-backoff", DOCUMENTED)
    task = client.create_task(
        parent=queue,
        task=tasks_v2.Task(http_request=tasks_v2.HttpRequest(url=target.url("/codes/500"))),
    )
    emulator.run_until_idle()
    attempts = emulator.attempts_for(task.name)
    table = Table(title="A failing task on min 10 s / max 300 s / 3 doublings (fake clock)")
    for column in ("attempt", "sent at", "wait before it", "formula"):
        table.add_column(column, justify="right")
    for index, attempt in enumerate(attempts):
        offset = attempt.dispatch_time - attempts[0].dispatch_time
        wait = (
            "" if index == 0 else f"{attempt.dispatch_time - attempts[index - 1].dispatch_time:g} s"
        )
        formula = "" if index == 0 else f"{retry_delay(index, DOCUMENTED):g} s"
        table.add_row(str(attempt.number), f"{offset:g} s", wait, formula)
    console.print(table)
    console.print(f"stopped after max_attempts = {DOCUMENTED.max_attempts}: the task is deleted")


def _headers_and_dedup(
    console: Console,
    emulator: CloudTasksEmulator,
    client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    queue = _queue(client, "tour-headers", RetryPolicy(100, 1, 60, 4, 0))
    name = f"{queue}/tasks/order-42"
    task = tasks_v2.Task(
        name=name,
        http_request=tasks_v2.HttpRequest(
            url=target.url("/codes/503/404/200"),
            oidc_token=tasks_v2.OidcToken(service_account_email=ACCOUNT),
        ),
    )
    client.create_task(parent=queue, task=task)
    emulator.run_until_idle()
    table = Table(title="Headers the target saw for task order-42 (answers 503, 404, 200)")
    for column in ("answer", "RetryCount", "ExecutionCount", "PreviousResponse"):
        table.add_column(column, justify="right")
    received = target.for_task(name)
    for answer, request in zip((503, 404, 200), received, strict=True):
        headers = request.headers
        table.add_row(
            str(answer),
            headers["X-CloudTasks-TaskRetryCount"],
            headers["X-CloudTasks-TaskExecutionCount"],
            headers.get("X-CloudTasks-TaskPreviousResponse", "—"),
        )
    console.print(table)

    token = received[-1].headers["Authorization"].removeprefix("Bearer ")
    jwks_uri = httpx.get(emulator.discovery_url).json()["jwks_uri"]
    key = jwt.PyJWKClient(jwks_uri).get_signing_key_from_jwt(token).key
    claims = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=target.url("/codes/503/404/200"),
        issuer=emulator.issuer,
    )
    console.print(
        f"OIDC token verified against {jwks_uri}: email {claims['email']}, audience = the task URL"
    )

    try:
        client.create_task(parent=queue, task=task)
    except AlreadyExists as error:
        console.print(f"re-creating order-42 right after it succeeded: {error.message}")
    emulator.advance(3601)
    client.create_task(parent=queue, task=task)
    console.print("one hour later (fake clock) the name is accepted again")


def run(console: Console) -> None:
    """The tour, printed to ``console``."""
    console.rule("Cloud Tasks emulator")
    with (
        RecordingTarget() as target,
        CloudTasksEmulator(clock=FakeClock()) as emulator,
        build_tasks_client(emulator.address) as client,
    ):
        _backoff(console, emulator, client, target)
        _headers_and_dedup(console, emulator, client, target)


if __name__ == "__main__":
    run(Console())
