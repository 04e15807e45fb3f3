"""A real HTTP target for trying the emulator out (tests, the tour): a stdlib threading server
on a free loopback port that answers each request according to its path and records what
arrived.

Paths: ``/ok`` answers 200; ``/codes/503/404/200`` answers the n-th request *of a task*
(by X-CloudTasks-TaskName) with the n-th code, repeating the last; ``/hold`` keeps each
request open until :meth:`RecordingTarget.release` lets it answer 200, so a test decides how
long requests stay in flight instead of guessing it with a sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Received:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    at: float
    """``time.monotonic()`` when the request arrived."""


class RecordingTarget:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.max_concurrent = 0
        self._concurrent = 0
        self._per_task: dict[str, int] = {}
        self._held = 0
        self._permits = 0
        self._closed = False
        self._changed = threading.Condition()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = target._respond(self.path, self.command, dict(self.headers), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def _respond(self, path: str, method: str, headers: dict[str, str], body: bytes) -> int:
        with self._changed:
            self.received.append(Received(path, method, headers, body, time.monotonic()))
            self._concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self._concurrent)
            task = headers.get("X-CloudTasks-TaskName", "")
            index = self._per_task.get(task, 0)
            self._per_task[task] = index + 1
            self._changed.notify_all()
        try:
            parts = path.strip("/").split("/")
            if parts[0] == "codes":
                codes = [int(code) for code in parts[1:]]
                return codes[min(index, len(codes) - 1)]
            if parts[0] == "hold":
                self._hold()
            return 200
        finally:
            with self._changed:
                self._concurrent -= 1
                self._changed.notify_all()

    def _hold(self) -> None:
        with self._changed:
            self._held += 1
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._permits > 0 or self._closed)
            self._permits = max(0, self._permits - 1)
            self._held -= 1

    @property
    def held(self) -> int:
        """``/hold`` requests waiting for :meth:`release` right now."""
        with self._changed:
            return self._held

    def release(self, count: int) -> None:
        """Let ``count`` held (or future ``/hold``) requests answer, in any order."""
        with self._changed:
            self._permits += count
            self._changed.notify_all()

    def wait_until(
        self, condition: Callable[[RecordingTarget], bool], timeout: float = 10.0
    ) -> None:
        """Return once ``condition(self)`` holds, checked whenever a request arrives, is held
        or ends; TimeoutError after ``timeout`` seconds (a bound against hanging, not a time
        the test relies on)."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout):
                raise TimeoutError(f"target: condition not met within {timeout}s")

    def for_task(self, task_name: str) -> list[Received]:
        """Requests of one task (full or short name), in arrival order."""
        short = task_name.rsplit("/", 1)[-1]
        return [r for r in self.received if r.headers.get("X-CloudTasks-TaskName") == short]

    def __enter__(self) -> RecordingTarget:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._changed:
            self._closed = True  # held requests answer, so no handler outlives the target
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
