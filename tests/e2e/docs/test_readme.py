"""The README's promises, tried as a newcomer would: its shell commands run exactly as printed
on a fresh stack, and its service table is the catalogue."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from caplab.core import catalogue

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"


def shell_blocks(text: str) -> list[list[str]]:
    """Each ```sh block as a list of commands (backslash continuations joined)."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        commands: list[str] = []
        pending = ""
        for line in body.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            commands.append(pending + line)
            pending = ""
        blocks.append([c for c in commands if c.strip()])
    return blocks


def try_it_block() -> list[str]:
    return next(b for b in shell_blocks(README.read_text()) if any("serve" in c for c in b))


@pytest.fixture
def newcomer_environ(tmp_path: Path) -> dict[str, str]:
    """A shell's environment with nothing of caplab set, state kept in a temporary home."""
    return dict(os.environ, CAPLAB_HOME=str(tmp_path / "home"))


@pytest.fixture
def emulators_down_after(newcomer_environ: dict[str, str]) -> Iterator[None]:
    yield
    subprocess.run(
        [str(ROOT / ".venv/bin/caplab"), "emulators", "down"],
        cwd=ROOT,
        env=newcomer_environ,
        capture_output=True,
        timeout=120,
    )


def run(command: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=180
    )


def test_the_try_it_commands_run_as_printed(
    newcomer_environ: dict[str, str], emulators_down_after: None, tmp_path: Path
) -> None:
    """`caplab emulators up`, `caplab serve` (the second terminal) and every curl, exactly as
    the README prints them, on the default ports; each curl answers 2xx with JSON."""
    commands = try_it_block()
    up, serve, *requests = commands
    assert "emulators up" in up
    assert "caplab serve" in serve
    started = run(up, newcomer_environ)
    assert started.returncode == 0, started.stdout + started.stderr
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {serve}"],
            cwd=ROOT,
            env=newcomer_environ,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ledger = f"http://127.0.0.1:{catalogue.service('ledger').port}"
        for _ in range(600):
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(ledger + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling for readiness, not synchronising a test step
        for command in requests:
            answered = run(command + " --fail-with-body --silent --show-error", newcomer_environ)
            assert answered.returncode == 0, (command, answered.stdout, answered.stderr)
            assert answered.stdout.startswith("{"), (command, answered.stdout)
        final = run(requests[-1], newcomer_environ)
        assert '"balance_cents":7500' in final.stdout.replace(" ", "")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def test_the_service_table_is_the_catalogue() -> None:
    """Every catalogue service is a row naming its port and an existing folder; no other row
    claims a port."""
    rows = re.findall(r"^\| (.+?) \| \[`(.+?)`\]\((.+?)\) \| (.+?) \|", README.read_text(), re.M)
    assert rows
    by_name = {re.sub(r"[^a-z]", " ", name).split()[0]: row for name, *row in rows}
    for service in catalogue.SERVICES:
        name = "webhook" if service.name == "sink" else service.name
        assert name in by_name, service.name
        _, link, port = by_name[name]
        assert port == str(service.port), service.name
        assert (ROOT / link).exists(), link
    claimed = {row[3] for row in rows if row[3].isdigit()}
    assert claimed == {str(s.port) for s in catalogue.SERVICES}
