"""Dispatch through the official client to a real local HTTP target: the retry schedule,
stop rule, rate limit, concurrency cap, headers, deadlines, pause/resume/purge and RunTask."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions
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
    assert _gaps([a.dispatch_time for a in attempts]) == [1] * 60  # the 61st is 60 s after the 1st
    assert list(fake_client.list_tasks(parent=queue.name)) == []


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
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """With max_concurrent_dispatches 2, six due tasks go out two at a time: while the target
    holds two requests the other tasks stay undispatched (dispatch_count 0), and each pair
    the target releases lets exactly the next two out.

    The target holds every request until the test releases it and the fake clock never moves,
    so nothing here depends on how long anything takes: the scheduler dispatches in one
    synchronous pass on the emulator's event loop right after each CreateTask or completion,
    and ListTasks (a later request on that loop) is served after it, so a third concurrent
    dispatch would show as a third task with dispatch_count 1."""
    queue = make_queue(fake_client, concurrent=2)
    for _ in range(6):
        fake_client.create_task(parent=queue.name, task=http_task(target.url("/hold")))
    for done in (0, 2, 4):
        target.wait_until(lambda t, n=done + 2: len(t.received) >= n)
        listed = list(fake_client.list_tasks(parent=queue.name))
        assert len(listed) == 6 - done  # the released ones answered 200 and are gone
        assert sorted(t.dispatch_count for t in listed) == [0] * (4 - done) + [1, 1]
        out = sorted(t.name.rsplit("/", 1)[1] for t in listed if t.dispatch_count == 1)
        assert out == sorted(r.headers["X-CloudTasks-TaskName"] for r in target.received[done:])
        assert target.held == 2
        target.release(2)
    fake_emulator.run_until_idle()
    assert len(target.received) == 6
    assert target.max_concurrent == 2
    assert [a.status for a in fake_emulator.attempts] == [200] * 6
    assert list(fake_client.list_tasks(parent=queue.name)) == []


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
    assert [h["X-CloudTasks-TaskETA"] for h in seen] == [f"{a.schedule_time:.6f}" for a in attempts]


def test_missed_deadline_is_a_failed_attempt_and_retried(
    short_deadline_emulator: CloudTasksEmulator,
    short_deadline_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A target that has not answered when dispatch_deadline (0.2 s) passes fails the attempt
    as DEADLINE_EXCEEDED; the task is retried after the backoff (on the fake clock) and stops
    at max_attempts, deleted. The target holds both requests unanswered until the test
    ends, so the outcome does not depend on any timing."""
    queue = make_queue(short_deadline_client, max_attempts=2, min_backoff=7, max_backoff=7)
    task = short_deadline_client.create_task(
        parent=queue.name,
        task=http_task(target.url("/hold"), dispatch_deadline=timedelta(seconds=0.2)),
    )
    short_deadline_emulator.run_until_idle()
    attempts = short_deadline_emulator.attempts_for(task.name)
    assert [(a.status, a.error) for a in attempts] == [(None, "DEADLINE_EXCEEDED")] * 2
    assert [a.headers["X-CloudTasks-TaskRetryCount"] for a in attempts] == ["0", "1"]
    assert attempts[1].dispatch_time - attempts[0].response_time == 7
    assert target.held == 2  # neither request was ever answered
    assert list(short_deadline_client.list_tasks(parent=queue.name)) == []


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
    assert after.schedule_time.timestamp() == called_at + 30
    assert after.response_count == 1
    assert after.last_attempt.response_status.code == 13  # INTERNAL, from HTTP 500


HOUR = 3600


def test_unlimited_attempts_retry_until_31_days_after_creation(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """max_attempts -1 never stops retrying on its own, but the task is deleted 31 days
    (744 h) after it was created: first scheduled 10 h after creation and retried every 20 h,
    it is attempted at 10, 30, ..., 730 h (37 attempts; the next retry, at 750 h, would be
    after 744 h) and is gone after that last failure, not before.

    The times are chosen so that other rules give other answers: retention of 30 days stops
    at 710 h, 32 days at 770 h, counted from the first attempt at 750 h, and no retention
    never."""
    queue = make_queue(fake_client, max_attempts=-1, min_backoff=20 * HOUR, max_backoff=20 * HOUR)
    created = fake_emulator.clock.now()
    task = fake_client.create_task(
        parent=queue.name,
        task=http_task(
            target.url("/codes/500"),
            schedule_time=datetime.fromtimestamp(created + 10 * HOUR, UTC),
        ),
    )
    fake_emulator.run_until_idle(horizon=created + 729 * HOUR)
    before_last = fake_client.get_task(name=task.name)
    assert before_last.dispatch_count == 36
    assert before_last.schedule_time.timestamp() == created + 730 * HOUR
    fake_emulator.run_until_idle(horizon=created + 40 * 24 * HOUR)
    attempts = fake_emulator.attempts_for(task.name)
    assert [(a.dispatch_time - created) / HOUR for a in attempts] == list(range(10, 731, 20))
    with pytest.raises(exceptions.NotFound, match="existed recently"):
        fake_client.get_task(name=task.name)
    assert list(fake_client.list_tasks(parent=queue.name)) == []


def test_a_task_that_failed_for_good_keeps_its_name_until_the_tombstone_expires(
    fake_emulator: CloudTasksEmulator,
    fake_client: tasks_v2.CloudTasksClient,
    target: RecordingTarget,
) -> None:
    """A named task deleted because it ran out of attempts deduplicates like a completed
    one: re-creating it is ALREADY_EXISTS for the task tombstone period (1 h) after its last
    failed attempt, and accepted (and dispatched again) from then on."""
    queue = make_queue(fake_client, max_attempts=2, min_backoff=1, max_backoff=1)
    name = f"{queue.name}/tasks/failed-for-good"
    fake_client.create_task(parent=queue.name, task=http_task(target.url("/codes/500"), name=name))
    fake_emulator.run_until_idle()
    attempts = fake_emulator.attempts_for(name)
    assert [a.status for a in attempts] == [500, 500]
    assert fake_emulator.clock.now() == attempts[-1].response_time
    with pytest.raises(exceptions.NotFound, match="existed recently"):
        fake_client.get_task(name=name)
    with pytest.raises(exceptions.AlreadyExists, match="Requested entity already exists"):
        fake_client.create_task(parent=queue.name, task=http_task(target.url("/ok"), name=name))
    fake_emulator.advance(HOUR - 1)
    with pytest.raises(exceptions.AlreadyExists):
        fake_client.create_task(parent=queue.name, task=http_task(target.url("/ok"), name=name))
    fake_emulator.advance(1)
    again = fake_client.create_task(parent=queue.name, task=http_task(target.url("/ok"), name=name))
    assert again.name == name
    fake_emulator.run_until_idle()
    assert [a.status for a in fake_emulator.attempts_for(name)] == [500, 500, 200]
