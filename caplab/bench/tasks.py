"""Cloud Tasks emulator benchmark: dispatch throughput and backoff timing error.

Runs the emulator as ``caplab emulators up`` does (its own process, ``python -m
emulators.cloudtasks`` on free ports) and a minimal ASGI target under uvicorn in this process,
reached through the official client built by the one client factory.

1. Throughput: ``--tasks`` tasks are created on paused queues at the 500/s maximum rate (the
   fastest a Cloud Tasks queue may be configured), then the queues are resumed; the figure is
   tasks delivered per second from resume to the last arrival at the target. With one queue
   the ceiling is the queue's own limit (500/s after a burst of 100); with several queues it is
   the emulator's.
2. Backoff timing: tasks that always fail on a queue with min 0.2 s, max 1.6 s, 3 doublings
   (retries after 0.2, 0.4, 0.8, 1.6, 1.6 s); the error is the gap between consecutive arrivals
   at the target minus the formula's delay.

    python -m caplab.bench.tasks [--tasks 3000] [--failing 20]
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import timedelta
from typing import Any

import uvicorn
from google.cloud import tasks_v2

from caplab.core.clients import build_tasks_client
from caplab.core.topology import LOCAL_PROJECT
from emulators import manager
from emulators.cloudtasks.backoff import RetryPolicy, retry_delay

PARENT = f"projects/{LOCAL_PROJECT}/locations/us-central1"
BACKOFF = RetryPolicy(
    max_attempts=6, min_backoff=0.2, max_backoff=1.6, max_doublings=3, max_retry_duration=0
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Target:
    """A minimal ASGI app: ``/ok`` answers 200, ``/fail`` 500; arrivals are recorded per
    task (``time.monotonic()``)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.count = 0
        self.last = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        now = time.monotonic()
        headers = dict(scope["headers"])
        task = headers.get(b"x-cloudtasks-taskname", b"").decode()
        self.arrivals[task].append(now)
        self.count += 1
        self.last = now
        while (await receive()).get("more_body"):
            pass
        status = 500 if scope["path"] == "/fail" else 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})


def serve_target(target: Target) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(target, log_level="warning", lifespan="off", access_log=False, backlog=4096)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def start_emulator() -> tuple[subprocess.Popen[bytes], str]:
    port, oidc_port = manager.free_port(), manager.free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.cloudtasks",
            "--port",
            str(port),
            "--oidc-port",
            str(oidc_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with build_tasks_client(address) as client:
                list(client.list_queues(parent=PARENT, timeout=1))
            return process, address
        except Exception:  # not serving yet
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the emulator did not start")


def make_queue(client: tasks_v2.CloudTasksClient, rate: float, policy: RetryPolicy) -> str:
    queue = client.create_queue(
        parent=PARENT,
        queue=tasks_v2.Queue(
            name=f"{PARENT}/queues/bench-{uuid.uuid4().hex[:8]}",
            rate_limits=tasks_v2.RateLimits(
                max_dispatches_per_second=rate, max_concurrent_dispatches=1000
            ),
            retry_config=tasks_v2.RetryConfig(
                max_attempts=policy.max_attempts,
                min_backoff=timedelta(seconds=policy.min_backoff),
                max_backoff=timedelta(seconds=policy.max_backoff),
                max_doublings=policy.max_doublings,
            ),
        ),
    )
    return queue.name


def throughput(
    client: tasks_v2.CloudTasksClient, target: Target, url: str, tasks: int, queues: int
) -> float:
    names = [make_queue(client, 500, BACKOFF) for _ in range(queues)]
    for name in names:
        client.pause_queue(name=name)
    task = tasks_v2.Task(http_request=tasks_v2.HttpRequest(url=f"{url}/ok"))
    for index in range(tasks):
        client.create_task(parent=names[index % queues], task=task)
    before = target.count
    resumed = time.monotonic()
    for name in names:
        client.resume_queue(name=name)
    deadline = resumed + 120
    while target.count - before < tasks and time.monotonic() < deadline:
        time.sleep(0.01)
    delivered = target.count - before
    return delivered / (target.last - resumed)


def backoff_errors(
    client: tasks_v2.CloudTasksClient, target: Target, url: str, failing: int
) -> tuple[list[float], int]:
    """Timing errors of every retry that reached the target, and how many attempts did not
    (the emulator counts those as failed attempts too, so the schedule is then unmeasured)."""
    queue = make_queue(client, 500, BACKOFF)
    created = [
        client.create_task(
            parent=queue, task=tasks_v2.Task(http_request=tasks_v2.HttpRequest(url=f"{url}/fail"))
        ).name
        for _ in range(failing)
    ]
    expected = [retry_delay(n, BACKOFF) for n in range(1, BACKOFF.max_attempts)]
    short_names = [name.rsplit("/", 1)[1] for name in created]
    deadline = time.monotonic() + sum(expected) + 30
    while time.monotonic() < deadline and any(
        len(target.arrivals[name]) < BACKOFF.max_attempts for name in short_names
    ):
        time.sleep(0.1)
    errors = []
    for name in short_names:
        arrivals = target.arrivals[name]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        if len(gaps) == len(expected):  # a lost attempt would misalign the gaps
            errors.extend(gap - delay for gap, delay in zip(gaps, expected, strict=True))
    missing = sum(BACKOFF.max_attempts - len(target.arrivals[name]) for name in short_names)
    return errors, missing


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--failing", type=int, default=20)
    args = parser.parse_args()
    os.environ.pop("CLOUD_TASKS_EMULATOR_HOST", None)
    target = Target()
    url, server, thread = serve_target(target)
    process, address = start_emulator()
    try:
        with build_tasks_client(address) as client:
            print(f"Cloud Tasks emulator {address}, target {url}, {os.cpu_count()} CPUs")
            for queues in (1, 4):
                rate = throughput(client, target, url, args.tasks, queues)
                print(
                    f"throughput: {args.tasks} tasks on {queues} queue(s) at 500/s each: "
                    f"{rate:,.0f} dispatches/s"
                )
            errors, missing = backoff_errors(client, target, url, args.failing)
            absolute = sorted(abs(e) for e in errors)
            print(
                f"backoff timing: {len(errors)} retries ({args.failing} tasks, delays "
                f"0.2/0.4/0.8/1.6/1.6 s): error mean {statistics.mean(errors) * 1000:+.1f} ms, "
                f"median |error| {statistics.median(absolute) * 1000:.1f} ms, "
                f"p99 |error| {absolute[int(0.99 * (len(absolute) - 1))] * 1000:.1f} ms, "
                f"max |error| {absolute[-1] * 1000:.1f} ms; attempts that never reached the "
                f"target: {missing}"
            )
    finally:
        process.terminate()
        process.wait(10)
        server.should_exit = True
        thread.join()


if __name__ == "__main__":
    main()
