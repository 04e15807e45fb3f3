"""The emulator takes hostile input like production does: header names and values that no
HTTP request may carry are INVALID_ARGUMENT at CreateTask; an attempt aiohttp cannot even
build still ends as a failed attempt; the attempt log keeps no token; the token cache is
bounded."""

from __future__ import annotations

import asyncio

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2

from emulators.cloudtasks import CloudTasksEmulator
from emulators.cloudtasks.dispatch import REDACTED, HttpDispatcher
from emulators.cloudtasks.target import RecordingTarget
from emulators.cloudtasks.tokens import MAX_CACHED_TOKENS, TokenSigner
from tests.fixtures.cloudtasks_helpers import http_task, make_queue

ACCOUNT = "notifier@caplab-local.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"X-Split": "a\r\nX-Injected: 1"}, "control character"),
        ({"X-Split": "a\nb"}, "control character"),
        ({"X-Split": "a\rb"}, "control character"),
        ({"X-Nul": "a\x00b"}, "control character"),
        ({"X-Del": "a\x7fb"}, "control character"),
        ({"Bad Name": "v"}, "not a valid header name"),
        ({"X-Colon:": "v"}, "not a valid header name"),
        ({"": "v"}, "not a valid header name"),
    ],
    ids=["crlf", "lf", "cr", "nul", "del", "space-in-name", "colon-in-name", "empty-name"],
)
def test_invalid_headers_are_invalid_argument(
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
    headers: dict[str, str],
    reason: str,
) -> None:
    queue = make_queue(fake_client)
    with pytest.raises(exceptions.InvalidArgument, match=reason):
        fake_client.create_task(
            parent=queue.name, task=http_task(target.url("/ok"), http={"headers": headers})
        )
    assert list(fake_client.list_tasks(parent=queue.name)) == []


def test_tabs_and_visible_characters_are_still_accepted(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """The check refuses only what HTTP forbids: a tab and any visible text pass."""
    queue = make_queue(fake_client)
    value = 'a\tb c;d="e", ~f'
    task = fake_client.create_task(
        parent=queue.name, task=http_task(target.url("/ok"), http={"headers": {"X-Ok": value}})
    )
    fake_emulator.run_until_idle()
    (received,) = target.for_task(task.name)
    assert received.headers["X-Ok"] == value


def test_an_attempt_that_cannot_be_built_is_a_failed_attempt(target: RecordingTarget) -> None:
    """Were an invalid header ever to get past CreateTask, aiohttp refuses to send it: the
    attempt fails like an unreachable target (the retry policy then decides) instead of
    killing the attempt, and nothing reaches the target."""
    request = tasks_v2.HttpRequest(url=target.url("/ok"), http_method=tasks_v2.HttpMethod.POST)

    async def attempt() -> tuple[int | None, str | None]:
        dispatcher = HttpDispatcher()
        try:
            response = await dispatcher.send(request._pb, {"X-Split": "a\r\nb"}, 5.0)
        finally:
            await dispatcher.close()
        return response.status, response.error

    status, error = asyncio.run(attempt())
    assert status is None
    assert error is not None
    assert error.startswith("UNAVAILABLE: invalid request")
    assert target.received == []


def test_the_attempt_log_keeps_no_token(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """The target gets the OIDC token; the attempt log records only that one was sent."""
    queue = make_queue(fake_client)
    task = fake_client.create_task(
        parent=queue.name,
        task=http_task(
            target.url("/ok"),
            http={"oidc_token": tasks_v2.OidcToken(service_account_email=ACCOUNT)},
        ),
    )
    fake_emulator.run_until_idle()
    (received,) = target.for_task(task.name)
    token = received.headers["Authorization"].removeprefix("Bearer ")
    assert token.count(".") == 2
    (attempt,) = fake_emulator.attempts_for(task.name)
    assert attempt.headers["Authorization"] == REDACTED
    assert token not in repr(fake_emulator.attempts)


def test_the_token_cache_is_bounded() -> None:
    """Tokens for ever new audiences (the default audience is the task's URL) keep at most
    MAX_CACHED_TOKENS; a recently used one is still reused."""
    signer = TokenSigner("http://127.0.0.1:1")
    first = signer.id_token(ACCOUNT, "https://keep.example/", now=1000.0)
    for index in range(MAX_CACHED_TOKENS + 50):
        signer.id_token(ACCOUNT, f"https://target.example/{index}", now=1000.0)
        if index % 100 == 0:
            assert signer.id_token(ACCOUNT, "https://keep.example/", now=1001.0) == first
    assert signer.cached_tokens == MAX_CACHED_TOKENS
