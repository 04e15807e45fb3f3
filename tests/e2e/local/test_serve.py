"""`caplab serve` runs services as processes against a running stack and stops them all on
SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators import manager
from tests.fixtures.services import listening


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[manager.StackConfig]:
    """A stack of this test's own: `serve` re-points push subscriptions, which must not move
    the session stack's."""
    environ = dict(os.environ, CAPLAB_HOME=str(tmp_path / "home"))
    config = manager.StackConfig.from_environ(environ, port_overrides=manager.free_ports())
    try:
        manager.up(config)
        yield config
    finally:
        manager.down(config)


def test_serve_starts_the_chosen_services_and_stops_them_on_sigterm(
    own_stack: manager.StackConfig, tmp_path: Path
) -> None:
    """The sink answers on the port given; SIGTERM stops `serve` and the sink with it."""
    port = manager.free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "caplab", "serve", "--only", "sink", "--port", f"sink={port}"],
        env=dict(own_stack.environ),  # its CAPLAB_HOME: serve finds the stack's ports there
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 130
        assert not listening(port)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        log.close()
