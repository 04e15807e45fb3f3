"""The image's exact command line, run as a local process against the emulators, serves
``/readyz``; so does every command line the program gives Cloud Run. No Docker engine is
involved: the process runs from this checkout's virtualenv with the image's environment."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from caplab.core import catalogue
from emulators import manager
from infra.offline import registry_image, run_program
from tests.fixtures.infra_image import command, environment


@functools.cache
def cloud_run_args() -> dict[str, list[str]]:
    """Each deployed service's container arguments, as the program declares them."""
    tagged = registry_image("caplab-dev-000000", "us-central1", ["dev"], "sha256:" + "0" * 64)
    mocked = run_program("dev", images=[tagged])
    return {
        declared.name: mocked.named("gcp:cloudrunv2/service:Service", declared.name).inputs[
            "template"
        ]["containers"][0]["args"]
        for declared in catalogue.DEPLOYED
    }


@contextlib.contextmanager
def serve(argv: list[str], emulator_env: dict[str, str], log: Path) -> Iterator[str]:
    """Run ``argv`` (its executable from the virtualenv, as on the image's PATH) with the
    image's environment and the emulators'; yields its base URL once ``/readyz`` is 200."""
    port = manager.free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ) | environment() | emulator_env
    env |= {"PORT": str(port), "PATH": bin_dir + os.pathsep + env.get("PATH", "")}
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_ready(url: str, log: Path, attempts: int = 150) -> httpx.Response:
    """Poll ``/readyz`` until it answers 200 (or give up: the last answer, or the log)."""
    last: httpx.Response | None = None
    for _ in range(attempts):
        try:
            last = httpx.get(f"{url}/readyz", timeout=2.0)
            if last.status_code == 200:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}/readyz never answered 200 (last: {last}); log:\n{log.read_text()}")


def test_image_command_serves_readyz(emulator_env: dict[str, str], tmp_path: Path) -> None:
    """``ENTRYPOINT`` + ``CMD`` (``caplab service ledger``) starts the ledger on ``$PORT``,
    ready against the emulators."""
    log = tmp_path / "image-command.log"
    with serve(command(), emulator_env, log) as url:
        response = wait_ready(url, log)
    assert response.status_code == 200


@pytest.mark.parametrize("service", [s.name for s in catalogue.DEPLOYED if s.name != command()[2]])
def test_cloud_run_command_serves_readyz(
    service: str, emulator_env: dict[str, str], tmp_path: Path
) -> None:
    """The image's entrypoint with the arguments the program gives each other Cloud Run
    service starts that service, ready against the emulators."""
    args = cloud_run_args()[service]
    assert args == ["service", service]
    log = tmp_path / f"{service}.log"
    with serve(command()[:1] + args, emulator_env, log) as url:
        response = wait_ready(url, log)
    assert response.status_code == 200
