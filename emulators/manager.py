"""Start, probe, bootstrap, report on and stop the local emulator stack.

Each emulator runs in its own session (so its own process group): stopping signals the whole
group, which matters for Spanner, whose ``gateway_main`` would otherwise orphan the
``emulator_main`` child holding the gRPC port. A JSON state file per emulator (pid, process
start time, process group, ports, log) is written the moment it is spawned, so ``down`` finds
and stops exactly what ``up`` started even when the process that ran ``up`` was killed with -9.
The process start time guards against a recycled pid.

Process bookkeeping reads ``/proc`` (Linux), because no portable library tells whether a
process group still has live, non-zombie members — the question ``down`` must answer before
it can promise that nothing is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import enum
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from caplab.core.environment import DEFAULT_TASKS_LOCATION, default_home, resource_environment
from caplab.core.errors import CaplabError, EmulatorNotReadyError, PortInUseError
from caplab.core.topology import LOCAL_PROJECT
from emulators.specs import EMULATORS, EmulatorSpec

DEFAULT_HOST = "127.0.0.1"
LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and how it is reached. Ports resolve from, in order: explicit
    overrides (flags), ``CAPLAB_<KEY>_PORT`` variables, the defaults in the specs."""

    home: Path
    ports: Mapping[str, int]
    environ: Mapping[str, str]
    host: str = DEFAULT_HOST
    ready_timeout: float = 60.0
    emulators: tuple[EmulatorSpec, ...] = EMULATORS
    service_urls: Mapping[str, str] | None = None

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        port_overrides: Mapping[str, int | None] | None = None,
        **kwargs: object,
    ) -> StackConfig:
        env = dict(os.environ if environ is None else environ)
        overrides = {k: v for k, v in (port_overrides or {}).items() if v is not None}
        ports: dict[str, int] = {}
        for spec in EMULATORS:
            for port in spec.ports:
                if port.key in overrides:
                    ports[port.key] = overrides[port.key]
                elif env.get(port.env):
                    ports[port.key] = int(env[port.env])
                else:
                    ports[port.key] = port.default
        return cls(home=default_home(env), ports=ports, environ=env, **kwargs)  # type: ignore[arg-type]

    @property
    def state_dir(self) -> Path:
        return self.home / "emulators"

    def state_path(self, spec: EmulatorSpec) -> Path:
        return self.state_dir / f"{spec.name}.json"

    def log_path(self, spec: EmulatorSpec) -> Path:
        return self.state_dir / f"{spec.name}.log"

    def address(self, spec: EmulatorSpec) -> str:
        return f"{self.host}:{self.ports[spec.main_port.key]}"


@dataclass
class EmulatorState:
    """What ``up`` records about a spawned emulator, persisted as JSON."""

    name: str
    pid: int
    pgid: int
    start_ticks: int
    host: str
    ports: dict[str, int]
    command: list[str]
    log: str

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> EmulatorState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return None


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DEAD = "dead"
    NOT_STARTED = "not started"


@dataclass
class StatusRow:
    name: str
    address: str
    pid: int | None
    health: Health
    detail: str = ""


@dataclass
class UpResult:
    started: list[str] = field(default_factory=list)
    already_running: list[str] = field(default_factory=list)
    ready_seconds: dict[str, float] = field(default_factory=dict)


# --- /proc helpers -------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of ``pid``, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _group_members(pgid: int, include_zombies: bool = False) -> list[int]:
    """Processes in process group ``pgid`` (live ones only, unless ``include_zombies``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[1] == pgid and (include_zombies or stat[0] != "Z"):
            members.append(int(entry.name))
    return members


def _is_alive(state: EmulatorState) -> bool:
    stat = _proc_stat(state.pid)
    return stat is not None and stat[0] != "Z" and stat[2] == state.start_ticks


_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}
"""Emulators this process spawned and still runs: kept referenced so that they are reaped
through ``Popen`` (not collected while running) when this same process stops them."""


def _reap_group(pgid: int) -> None:
    """Collect the exit status of every exited member of ``pgid`` that is our child, so none
    lingers as a zombie."""
    for pid in _group_members(pgid, include_zombies=True):
        spawned = _SPAWNED.get(pid)
        if spawned is not None:
            if spawned.poll() is not None:
                del _SPAWNED[pid]
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _become_subreaper() -> None:
    """Adopt orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``).

    When Spanner's ``gateway_main`` exits before its ``emulator_main`` child, the child is
    re-parented; on machines whose PID 1 never reaps (some micro-VM inits do not) it would stay
    a zombie. As a sub-reaper, the process running the stack (the test session, ``make demo``)
    collects it itself.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # 36 = PR_SET_CHILD_SUBREAPER


# --- ports -----------------------------------------------------------------------------------


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (bind test, as the emulator will do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _accepts(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.settimeout(0.5)
        return client.connect_ex((host, port)) == 0


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port the kernel says is free now (for tests and parallel stacks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports(emulators: tuple[EmulatorSpec, ...] = EMULATORS) -> dict[str, int]:
    """A distinct free loopback port for every port of every emulator."""
    ports: dict[str, int] = {}
    for spec in emulators:
        for port in spec.ports:
            candidate = free_port()
            while candidate in ports.values():
                candidate = free_port()
            ports[port.key] = candidate
    return ports


# --- environment -----------------------------------------------------------------------------


def client_environment(config: StackConfig) -> dict[str, str]:
    """The variables that point official clients (and caplab's services) at this stack."""
    env = {spec.host_variable: config.address(spec) for spec in config.emulators}
    for spec in config.emulators:
        if spec.environment is not None:
            env.update(spec.environment(config.host, config.ports))
    env.update(
        {
            **resource_environment(LOCAL_PROJECT, DEFAULT_TASKS_LOCATION),
            # The Spanner emulator runs one read-write transaction at a time; with multiplexed
            # sessions for read-write, concurrent transactions fail with non-retried
            # "Transaction not found" (docs/local-vs-cloud.md).
            "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW": "false",
            # For the same reason, services queue their read-write transactions instead of
            # letting the emulator abort them against each other (services/shared/transactions.py).
            "CAPLAB_SPANNER_MAX_CONCURRENT_TRANSACTIONS": "1",
            # Local webhooks (the sink) listen on loopback, which the outbound URL policy
            # refuses unless told otherwise (services/shared/urlguard.py).
            "CAPLAB_OUTBOUND_ALLOW_LOOPBACK": "true",
        }
    )
    return env


@contextlib.contextmanager
def exported(variables: Mapping[str, str]) -> Iterator[None]:
    """Temporarily export ``variables`` into this process (client libraries read
    ``*_EMULATOR_HOST`` from ``os.environ`` when a client is built)."""
    saved = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def env_lines(config: StackConfig) -> list[str]:
    """``export NAME=value`` lines for ``eval "$(caplab emulators env)"``."""
    return [f"export {k}={shlex.quote(v)}" for k, v in client_environment(config).items()]


# --- lifecycle -------------------------------------------------------------------------------


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def logs(config: StackConfig, name: str | None = None, lines: int = 50) -> str:
    """The last ``lines`` lines of one emulator's log, or of each."""
    chosen = [s for s in config.emulators if name is None or s.name == name]
    if not chosen:
        raise CaplabError(
            f"unknown emulator {name!r}; choose one of {[s.name for s in config.emulators]}"
        )
    return "\n".join(
        f"==> {spec.name} ({config.log_path(spec)}) <==\n{_log_tail(config.log_path(spec), lines)}"
        for spec in chosen
    )


def _probe_once(config: StackConfig, spec: EmulatorSpec) -> str | None:
    """None when ``spec``'s functional probe passes, else why not."""
    host, port = config.host, config.ports[spec.main_port.key]
    if not _accepts(host, port):
        return f"nothing accepts connections on {host}:{port}"
    try:
        with exported(client_environment(config)):
            spec.probe()
    except Exception as error:  # any failure of the probe means "not ready yet"
        return f"{type(error).__name__}: {error}"
    return None


def _wait_ready(
    config: StackConfig,
    spec: EmulatorSpec,
    process: subprocess.Popen[bytes] | None,
    launched_at: float,
) -> float:
    """Probe until ready; returns seconds from ``launched_at`` (monotonic) to ready."""
    deadline = time.monotonic() + config.ready_timeout
    reason = "not probed"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise EmulatorNotReadyError(
                spec.name,
                f"it exited with status {process.returncode}",
                _log_tail(config.log_path(spec)),
            )
        failure = _probe_once(config, spec)
        if failure is None:
            return time.monotonic() - launched_at
        reason = failure
        time.sleep(0.05)
    raise EmulatorNotReadyError(
        spec.name,
        f"no successful probe within {config.ready_timeout:.0f}s (last: {reason})",
        _log_tail(config.log_path(spec)),
    )


def _check_ports(config: StackConfig, specs: list[EmulatorSpec]) -> None:
    seen: dict[int, str] = {}
    for spec in specs:
        for port in spec.ports:
            number = config.ports[port.key]
            if number in seen:
                raise CaplabError(
                    f"port {number} is configured for both {seen[number]} and {port.purpose}"
                )
            seen[number] = port.purpose
            if not port_is_free(config.host, number):
                raise PortInUseError(number, port.purpose, f"{port.flag} or {port.env}")


def _spawn(config: StackConfig, spec: EmulatorSpec) -> subprocess.Popen[bytes]:
    from emulators.specs import Launch

    ports = {p.key: config.ports[p.key] for p in spec.ports}
    command = spec.command(Launch(host=config.host, ports=ports, environ=config.environ))
    log_path = config.log_path(spec)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(config.environ),
        )
    _SPAWNED[process.pid] = process
    stat = _proc_stat(process.pid)
    EmulatorState(
        name=spec.name,
        pid=process.pid,
        pgid=process.pid,
        start_ticks=stat[2] if stat else 0,
        host=config.host,
        ports=ports,
        command=command,
        log=str(log_path),
    ).save(config.state_path(spec))
    return process


def up(config: StackConfig) -> UpResult:
    """Start every emulator not already running, wait for each to pass its functional
    probe, then bootstrap the topology. Idempotent: a healthy running emulator is reported,
    not started twice. On failure, whatever this call started is stopped again."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    _become_subreaper()
    result = UpResult()
    to_start: list[EmulatorSpec] = []
    for spec in config.emulators:
        state = EmulatorState.load(config.state_path(spec))
        if state is not None and _is_alive(state):
            result.already_running.append(spec.name)
        else:
            if state is not None:
                _stop(config, spec, state)
            to_start.append(spec)
    _check_ports(config, to_start)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    launched_at: dict[str, float] = {}
    try:
        # Spawn all first so their start-ups overlap (the JVM of Pub/Sub dominates).
        for spec in to_start:
            launched_at[spec.name] = time.monotonic()
            processes[spec.name] = _spawn(config, spec)
            result.started.append(spec.name)
        for spec in config.emulators:
            result.ready_seconds[spec.name] = _wait_ready(
                config,
                spec,
                processes.get(spec.name),
                launched_at.get(spec.name, time.monotonic()),
            )
        with exported(client_environment(config)):
            for spec in config.emulators:
                spec.bootstrap(config.service_urls)
    except BaseException:
        for spec in to_start:
            state = EmulatorState.load(config.state_path(spec))
            if state is not None:
                _stop(config, spec, state)
        raise
    return result


def _stop(config: StackConfig, spec: EmulatorSpec, state: EmulatorState, grace: float = 5) -> None:
    """Stop ``state``'s process group (TERM, then KILL after ``grace`` s), wait until its ports
    are released, and forget it."""
    if _is_alive(state) or _group_members(state.pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(state.pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap_group(state.pgid)
            if not _group_members(state.pgid):
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state.pgid, signal.SIGKILL)
            while _group_members(state.pgid):
                _reap_group(state.pgid)
                time.sleep(0.05)
        _reap_group(state.pgid)
    deadline = time.monotonic() + grace
    while any(_accepts(state.host, p) for p in state.ports.values()):
        if time.monotonic() > deadline:
            raise CaplabError(
                f"{spec.name} was stopped but a port of {state.ports} still accepts connections"
            )
        time.sleep(0.05)
    config.state_path(spec).unlink(missing_ok=True)


def down(config: StackConfig, only: Collection[str] | None = None) -> list[str]:
    """Stop every emulator that ``up`` recorded (or just those named in ``only``); returns
    the names stopped."""
    stopped = []
    for spec in reversed(config.emulators):
        if only is not None and spec.name not in only:
            continue
        state = EmulatorState.load(config.state_path(spec))
        if state is None:
            continue
        _stop(config, spec, state)
        stopped.append(spec.name)
    return stopped


def running_config(config: StackConfig) -> StackConfig:
    """``config`` with the ports the recorded emulators were actually started on."""
    ports = dict(config.ports)
    for spec in config.emulators:
        state = EmulatorState.load(config.state_path(spec))
        if state is not None:
            ports.update(state.ports)
    return dataclasses.replace(config, ports=ports)


def status(config: StackConfig) -> list[StatusRow]:
    """One row per emulator: healthy, unhealthy (running, probe failing), dead (recorded but
    gone), or not started."""
    config = running_config(config)
    rows = []
    for spec in config.emulators:
        state = EmulatorState.load(config.state_path(spec))
        address = config.address(spec)
        if state is None:
            rows.append(StatusRow(spec.name, address, None, Health.NOT_STARTED))
        elif not _is_alive(state):
            rows.append(StatusRow(spec.name, address, state.pid, Health.DEAD))
        else:
            failure = _probe_once(config, spec)
            health = Health.HEALTHY if failure is None else Health.UNHEALTHY
            rows.append(StatusRow(spec.name, address, state.pid, health, failure or ""))
    return rows
