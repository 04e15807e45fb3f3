"""Start, wait for and stop service processes: shared by ``caplab serve`` and the test suite.

Each service runs as ``python -m caplab service <name>`` — the container's command line — in
its own session (process group), with ``PORT`` set. Readiness is the service's own ``/readyz``.
Stopping sends SIGTERM (what Cloud Run sends), then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from caplab.core.errors import CaplabError


def stand_in_environment(urls: Mapping[str, str]) -> dict[str, str]:
    """Variables pointing services at the local-only stand-ins, given each service's base URL:
    the ledger pays out through the stand-in bank."""
    return {"CAPLAB_BANK_URL": urls["bank"]}


@dataclass
class RunningService:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None:
            return "(log not captured)"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def start(
    name: str, port: int, environ: Mapping[str, str], log_path: Path | None = None
) -> RunningService:
    """Spawn ``caplab service <name>`` on ``port``; output to ``log_path`` (else inherited)."""
    env = dict(environ, PORT=str(port), PYTHONUNBUFFERED="1")
    output: IO[bytes] | None = log_path.open("ab") if log_path is not None else None
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "caplab", "service", name],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
        )
    finally:
        if output is not None:
            output.close()
    return RunningService(name, port, process, log_path)


def wait_ready(service: RunningService, timeout: float = 30.0, path: str = "/readyz") -> float:
    """Poll ``path`` (``/readyz``) until it answers 200; seconds waited. Raises with the
    log's tail if the process exits or the deadline passes."""
    started = time.monotonic()
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() - started < timeout:
            if service.process.poll() is not None:
                raise CaplabError(
                    f"service {service.name} exited with status {service.process.returncode}"
                    f"\n{service.log_tail()}"
                )
            try:
                response = client.get(service.url + path)
                if response.status_code == 200:
                    return time.monotonic() - started
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as error:
                last = f"{type(error).__name__}"
            time.sleep(0.1)
    raise CaplabError(
        f"service {service.name} not ready after {timeout:.0f}s (last: {last})\n"
        f"{service.log_tail()}"
    )


def stop(service: RunningService, grace: float = 10.0) -> int | None:
    """SIGTERM the service's process group, SIGKILL after ``grace`` s; its exit status."""
    if service.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.process.pid, signal.SIGTERM)
        try:
            service.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()
    return service.process.returncode


def kill(service: RunningService) -> None:
    """SIGKILL, no grace: a crash, for tests of what survives one."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.process.pid, signal.SIGKILL)
    service.process.wait()


@contextlib.contextmanager
def running(
    name: str,
    port: int,
    environ: Mapping[str, str],
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[RunningService]:
    """A started and ready service, stopped on exit whatever happened."""
    service = start(name, port, environ, log_path)
    try:
        wait_ready(service, timeout)
        yield service
    finally:
        stop(service)


@contextlib.contextmanager
def running_all(
    ports: Mapping[str, int], environ: Mapping[str, str], log_dir: Path | None = None
) -> Iterator[list[RunningService]]:
    """Every named service (name -> port) started together and ready, all stopped on exit —
    also when one of them fails to start. Logs go to ``log_dir/<name>.log`` when given."""
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    services: list[RunningService] = []
    try:
        for name, port in ports.items():
            log_path = log_dir / f"{name}.log" if log_dir is not None else None
            services.append(start(name, port, environ, log_path))
        for service in services:
            wait_ready(service)
        yield services
    finally:
        for service in services:
            stop(service)
