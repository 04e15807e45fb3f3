"""Dispatch through the official client to a real local HTTP target: the retry schedule,
stop rule, rate limit, concurrency cap, headers, deadlines, pause/resume/purge and RunTask."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import tasks_v2

from emulators.cloudtasks import CloudTasksEmulator
from emulators.cloudtasks.target import RecordingTarget
from tests.fixtures.cloudtasks_helpers import http_task, make_queue


def _gaps(times: list[float]) -> list[float]:
    return [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]


def test_documented_backoff_sequence_under_fake_clock(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A task that always fails on a min 10 s / max 300 s / 3-doublings queue is retried
    after 10, 20, 40, 80, 160, 240 and 300 s, then stops at max_attempts."""
    queue = make_queue(
        fake_client, max_attempts=8, min_backoff=10, max_backoff=300, max_doublings=3
    )
    task = fake_client.create_task(parent=queue.name, task=http_task(target.url("/codes/500")))
    fake_emulator.run_until_idle()
    attempts = fake_emulator.attempts_for(task.name)
    assert _gaps([a.dispatch_time for a in attempts]) == [10, 20, 40, 80, 160, 240, 300]
    assert len(target.for_task(task.name)) == 8
    assert [a.number for a in attempts] == list(range(1, 9))


def test_stop_rule_waits_for_both_attempts_and_duration(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """With max_attempts 2 and max_retry_duration 60 s (1 s backoff, no doubling growth
    beyond 1 s), retries go on past the 2nd attempt until 60 s have passed since the first."""
    queue = make_queue(
        fake_client, max_attempts=2, min_backoff=1, max_backoff=1, max_retry_duration=60
    )
    task = fake_client.create_task(parent=queue.name, task=http_task(target.url("/codes/503")))
    fake_emulator.run_until_idle()
    attempts = fake_emulator.attempts_for(task.name)
    elapsed = attempts[-1].response_time - attempts[0].dispatch_time
    assert len(attempts) == 61
    assert elapsed == pytest.approx(60)


def test_stop_rule_with_attempts_only(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """max_retry_duration 0 leaves the age unlimited, so max_attempts alone ends the retries,
    and the failed task is deleted (NOT_FOUND afterwards)."""
    queue = make_queue(fake_client, max_attempts=3, min_backoff=1)
    task = fake_client.create_task(parent=queue.name, task=http_task(target.url("/codes/404")))
    fake_emulator.run_until_idle()
    assert len(fake_emulator.attempts_for(task.name)) == 3
    assert list(fake_client.list_tasks(parent=queue.name)) == []


def test_rate_limit_spaces_dispatches(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """At 5 dispatches/s (burst 10), 14 tasks go out as 10 at once then one every 0.2 s."""
    queue = make_queue(fake_client, rate=5)
    assert queue.rate_limits.max_burst_size == 10
    for _ in range(14):
        fake_client.create_task(parent=queue.name, task=http_task(target.url("/ok")))
    start = fake_emulator.clock.now()
    fake_emulator.run_until_idle()
    offsets = sorted(round(a.dispatch_time - start, 6) for a in fake_emulator.attempts)
    assert offsets == [0.0] * 10 + [0.2, 0.4, 0.6, 0.8]


def test_future_schedule_time_is_honoured_and_past_becomes_now(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A task scheduled 60 s ahead is dispatched at that time; one scheduled in the past is
    stored with the creation time and dispatched at once."""
    queue = make_queue(fake_client)
    start = fake_emulator.clock.now()
    later = fake_client.create_task(
        parent=queue.name,
        task=http_task(target.url("/ok"), schedule_time=datetime.fromtimestamp(start + 60, UTC)),
    )
    past = fake_client.create_task(
        parent=queue.name,
        task=http_task(target.url("/ok"), schedule_time=datetime.fromtimestamp(start - 60, UTC)),
    )
    assert past.schedule_time.timestamp() == start
    fake_emulator.run_until_idle()
    dispatched = {a.task: a.dispatch_time - start for a in fake_emulator.attempts}
    assert dispatched == {past.name: 0, later.name: 60}


def test_concurrency_cap_is_observed_at_the_target(
    real_emulator: CloudTasksEmulator,
    real_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """With max_concurrent_dispatches 2, no more than 2 slow requests are ever in flight."""
    queue = make_queue(real_client, concurrent=2)
    for _ in range(6):
        real_client.create_task(parent=queue.name, task=http_task(target.url("/sleep/0.2")))
    real_emulator.run_until_idle(timeout=20)
    assert len(target.received) == 6
    assert target.max_concurrent == 2


def test_headers_across_503_404_200(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """RetryCount counts every failure (0, 1, 2), ExecutionCount excludes 5xx (0, 0, 1),
    PreviousResponse and RetryReason appear only on retries; short names, forced User-Agent,
    no Content-Type added, user headers kept."""
    queue = make_queue(fake_client, min_backoff=1)
    task = fake_client.create_task(
        parent=queue.name,
        task=http_task(
            target.url("/codes/503/404/200"),
            name=f"{queue.name}/tasks/headers-1",
            http={"headers": {"X-Custom": "kept", "User-Agent": "mine"}, "body": b"{}"},
        ),
    )
    fake_emulator.run_until_idle()
    seen = [r.headers for r in target.for_task(task.name)]
    assert [h["X-CloudTasks-TaskRetryCount"] for h in seen] == ["0", "1", "2"]
    assert [h["X-CloudTasks-TaskExecutionCount"] for h in seen] == ["0", "0", "1"]
    assert [h.get("X-CloudTasks-TaskPreviousResponse") for h in seen] == [None, "503", "404"]
    assert [h.get("X-CloudTasks-TaskRetryReason") for h in seen] == [None, "", ""]
    assert {h["X-CloudTasks-QueueName"] for h in seen} == {queue.name.rsplit("/", 1)[1]}
    assert {h["X-CloudTasks-TaskName"] for h in seen} == {"headers-1"}
    assert {h["User-Agent"] for h in seen} == {"Google-Cloud-Tasks"}
    assert all("Content-Type" not in h and h["X-Custom"] == "kept" for h in seen)
    attempts = fake_emulator.attempts_for(task.name)
    assert float(seen[1]["X-CloudTasks-TaskETA"]) == pytest.approx(attempts[1].schedule_time)


def test_missed_deadline_is_a_failed_attempt_and_retried(
    real_emulator: CloudTasksEmulator,
    real_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A target slower than dispatch_deadline fails the attempt as DEADLINE_EXCEEDED; the task
    is retried and stops at max_attempts."""
    queue = make_queue(real_client, max_attempts=2, min_backoff=0.1)
    task = real_client.create_task(
        parent=queue.name,
        task=http_task(target.url("/sleep/0.6"), dispatch_deadline=timedelta(seconds=0.2)),
    )
    real_emulator.run_until_idle(timeout=20)
    attempts = real_emulator.attempts_for(task.name)
    assert [(a.status, a.error) for a in attempts] == [(None, "DEADLINE_EXCEEDED")] * 2
    assert attempts[1].headers["X-CloudTasks-TaskRetryCount"] == "1"


def test_target_sees_retries_spaced_by_the_formula(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """min 0.25 s / max 1 s / 2 doublings: the five attempts reach the target with ETAs
    (X-CloudTasks-TaskETA) 0.25, 0.5, 1.0 and 1.0 s apart, and each is dispatched at its
    scheduled time, never before (on the emulator's clock, moved only by the test)."""
    queue = make_queue(
        fake_client, max_attempts=5, min_backoff=0.25, max_backoff=1, max_doublings=2
    )
    task = fake_client.create_task(parent=queue.name, task=http_task(target.url("/codes/500")))
    fake_emulator.run_until_idle()
    etas = [float(r.headers["X-CloudTasks-TaskETA"]) for r in target.for_task(task.name)]
    assert _gaps(etas) == [0.25, 0.5, 1.0, 1.0]
    attempts = fake_emulator.attempts_for(task.name)
    assert [a.dispatch_time for a in attempts] == [a.schedule_time for a in attempts]
    assert [a.schedule_time for a in attempts] == pytest.approx(etas, abs=1e-6)


def test_pause_resume_purge_and_run_task_while_paused(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A paused queue accepts but holds tasks; RunTask dispatches one anyway; purge deletes
    the rest; resume dispatches what is added afterwards."""
    queue = make_queue(fake_client)
    paused = fake_client.pause_queue(name=queue.name)
    assert paused.state == tasks_v2.Queue.State.PAUSED
    held = [
        fake_client.create_task(parent=queue.name, task=http_task(target.url("/ok")))
        for _ in range(3)
    ]
    fake_emulator.run_until_idle()
    assert target.received == []
    ran = fake_client.run_task(name=held[0].name)
    assert ran.dispatch_count == 1
    fake_emulator.run_until_idle()
    assert [r.headers["X-CloudTasks-TaskName"] for r in target.received] == [
        held[0].name.rsplit("/", 1)[1]
    ]
    purged = fake_client.purge_queue(name=queue.name)
    assert purged.purge_time is not None
    assert list(fake_client.list_tasks(parent=queue.name)) == []
    fake_client.resume_queue(name=queue.name)
    later = fake_client.create_task(parent=queue.name, task=http_task(target.url("/ok")))
    fake_emulator.run_until_idle()
    assert len(target.received) == 2
    assert target.for_task(later.name)


def test_run_task_failure_reschedules_from_the_call(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A failed RunTask attempt moves schedule_time to the RunTask time plus the retry delay."""
    queue = make_queue(fake_client, min_backoff=30, max_backoff=30)
    fake_client.pause_queue(name=queue.name)
    task = fake_client.create_task(parent=queue.name, task=http_task(target.url("/codes/500")))
    called_at = fake_emulator.clock.now()
    fake_client.run_task(name=task.name)
    fake_emulator.run_until_idle()
    after = fake_client.get_task(name=task.name)
    assert after.schedule_time.timestamp() == pytest.approx(called_at + 30, abs=1e-5)
    assert after.response_count == 1
    assert after.last_attempt.response_status.code == 13  # INTERNAL, from HTTP 500


def test_unlimited_attempts_keep_the_task_until_the_horizon(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """max_attempts -1 never stops retrying: run_until_idle with a horizon 35 s ahead sees
    attempts at 0, 10, 20, 30 s and the task still scheduled afterwards."""
    queue = make_queue(fake_client, max_attempts=-1, min_backoff=10, max_backoff=10)
    task = fake_client.create_task(parent=queue.name, task=http_task(target.url("/codes/500")))
    start = fake_emulator.clock.now()
    fake_emulator.run_until_idle(horizon=start + 35)
    attempts = fake_emulator.attempts_for(task.name)
    assert [a.dispatch_time - start for a in attempts] == [0, 10, 20, 30]
    assert fake_client.get_task(name=task.name).dispatch_count == 4
