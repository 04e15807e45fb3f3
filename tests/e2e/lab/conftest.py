"""The stand-in ledger (``python -m loadtest.standin``) as a separate process per test."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from emulators.manager import free_port


@contextlib.contextmanager
def _standin(log_dir: Path, *options: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (log_dir / f"standin-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "loadtest.standin", "--port", str(port), *options],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (log_dir / f"standin-{port}.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "stand-in ledger did not start"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def standin(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``with standin("--stall-at", "0.5", ...) as url:`` runs a stand-in ledger."""
    return lambda *options: _standin(tmp_path, *options)
