"""`caplab emulators` error paths and recovery, each on a stack of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from caplab.core.errors import EmulatorNotReadyError, PortInUseError, SdkNotFoundError
from emulators import manager
from emulators.specs import EMULATORS, by_name
from tests.fixtures.services import listening


@pytest.fixture
def own_config(tmp_path: Path) -> Iterator[manager.StackConfig]:
    """A stack configuration of this test's own (fresh home, free ports), always taken down."""
    environ = dict(os.environ, CAPLAB_HOME=str(tmp_path / "home"))
    config = manager.StackConfig.from_environ(environ, port_overrides=manager.free_ports())
    try:
        yield config
    finally:
        manager.down(config)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_port_held_by_another_socket_is_named_not_waited_on(
    own_config: manager.StackConfig,
) -> None:
    """A busy port fails `up` at once with the port and the flag to change it; nothing starts."""
    port = own_config.ports["bigtable"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PortInUseError) as raised:
            manager.up(own_config)
    assert raised.value.port == port
    assert "--bigtable-port" in str(raised.value)
    assert all(row.health is manager.Health.NOT_STARTED for row in manager.status(own_config))


def test_empty_sdk_root_fails_up_with_install_instructions(
    own_config: manager.StackConfig, tmp_path: Path
) -> None:
    """With CAPLAB_GCLOUD_SDK_ROOT on an empty folder, `up` says which packages to install and
    leaves nothing running."""
    empty = tmp_path / "empty-sdk"
    empty.mkdir()
    config = manager.StackConfig.from_environ(
        {**own_config.environ, "CAPLAB_GCLOUD_SDK_ROOT": str(empty)},
        port_overrides=dict(own_config.ports),
    )
    with pytest.raises(SdkNotFoundError, match="google-cloud-cli-spanner-emulator"):
        manager.up(config)
    assert list(config.state_dir.glob("*.json")) == []


def test_cli_exit_code_and_message_for_a_missing_sdk(tmp_path: Path) -> None:
    """The CLI turns the error into one line on stderr and a non-zero exit, no traceback."""
    env = dict(os.environ, CAPLAB_HOME=str(tmp_path), CAPLAB_GCLOUD_SDK_ROOT=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "caplab", "emulators", "up", *_port_args(manager.free_ports())],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert "caplab: error:" in result.stderr
    assert "google-cloud-cli-spanner-emulator" in result.stderr
    assert "Traceback" not in result.stderr


def _port_args(ports: dict[str, int]) -> list[str]:
    return [arg for spec in EMULATORS for p in spec.ports for arg in (p.flag, str(ports[p.key]))]


def test_down_after_up_was_killed_stops_everything(own_config: manager.StackConfig) -> None:
    """`up` killed with -9 mid-way leaves state files; `down` then stops every emulator it
    started and frees every port."""
    env = dict(own_config.environ)
    process = subprocess.Popen(
        [sys.executable, "-m", "caplab", "emulators", "up", *_port_args(dict(own_config.ports))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(own_config.state_dir.glob("*.json"))) < len(EMULATORS):
            assert time.monotonic() < deadline, "up never recorded its emulators"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    states = [
        state
        for spec in EMULATORS
        if (state := manager.EmulatorState.load(own_config.state_path(spec))) is not None
    ]
    assert len(states) == len(EMULATORS)
    assert any(_alive(state.pid) for state in states)

    assert sorted(manager.down(own_config)) == sorted(spec.name for spec in EMULATORS)

    for state in states:
        assert not _alive(state.pid)
        assert manager._group_members(state.pgid) == []
        for port in state.ports.values():
            assert not listening(port)
    assert list(own_config.state_dir.glob("*.json")) == []


def test_status_reports_a_killed_emulator_as_dead(own_config: manager.StackConfig) -> None:
    """After an emulator dies behind caplab's back, `status` says dead and `up` restarts it."""
    manager.up(own_config)
    bigtable = by_name("bigtable")
    state = manager.EmulatorState.load(own_config.state_path(bigtable))
    assert state is not None
    os.killpg(state.pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while manager._group_members(state.pgid):
        manager._reap_group(state.pgid)
        assert time.monotonic() < deadline
        time.sleep(0.05)

    health = {row.name: row.health for row in manager.status(own_config)}
    assert health["bigtable"] is manager.Health.DEAD
    assert health["spanner"] is manager.Health.HEALTHY

    result = manager.up(own_config)
    assert result.started == ["bigtable"]
    health = {row.name: row.health for row in manager.status(own_config)}
    assert set(health.values()) == {manager.Health.HEALTHY}


def test_readiness_timeout_shows_the_log_tail(own_config: manager.StackConfig) -> None:
    """An emulator that never passes its probe fails `up` with the end of its log, and `up`
    stops what it started."""
    broken = manager.StackConfig(
        home=own_config.home,
        ports=own_config.ports,
        environ=own_config.environ,
        ready_timeout=1.0,
        emulators=(_never_ready(by_name("bigtable")),),
    )
    with pytest.raises(EmulatorNotReadyError) as raised:
        manager.up(broken)
    assert "last lines of its log" in str(raised.value)
    assert list(broken.state_dir.glob("*.json")) == []


def _never_ready(spec: manager.EmulatorSpec) -> manager.EmulatorSpec:
    import dataclasses

    def probe() -> None:
        raise RuntimeError("this probe never passes")

    return dataclasses.replace(spec, probe=probe)
