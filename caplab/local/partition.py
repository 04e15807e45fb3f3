"""``caplab lab partition``: CAP made visible, from nothing, in one command.

It brings up on free loopback ports, in a temporary ``CAPLAB_HOME``:

1. the Spanner emulator. The ledger needs nothing else: the activity feed plays no part in
   this picture (the scenario's mix leaves it out), and the ledger's Pub/Sub client, built
   at start-up but used only for pushes that never come here, points at a closed port;
2. ``caplab chaos`` with a ``leader`` and a ``replica`` link in front of it;
3. two ledgers (``caplab service ledger``): one behind each link, with a 1 s deadline.

Then one open-loop run (strong reads, transfers and snapshots to the leader-side ledger;
exact, bounded and cached reads to the replica-side one) goes through three phases:
``baseline``, ``partition`` (the leader link cut) and ``healed``. Everything is stopped,
whatever happened, and the usual report is written with ``"phases"`` in ``report.json``.

The CAP expectations are checked, not just drawn (exit status 2 if one fails, as when a
checker fails):

- *fail closed*: no strong read, transfer or snapshot is answered while the leader link is
  cut (called after the cut and answered before the heal), and every one called while it is
  cut, early enough for the ledger's deadline to pass before the heal, is refused;
- *stay available*: every exact, bounded and cached read scheduled during the partition is
  answered;
- *recover*: after the heal, every mode answers again (each mode's last operations are
  answered);
- and every checker passes over the three phases together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from caplab.core.durations import parse_duration
from caplab.core.environment import default_home
from caplab.core.errors import CaplabError
from caplab.local import launcher
from emulators import manager
from emulators.specs import SPANNER
from loadtest.config import LoadConfig
from loadtest.load_cli import LabRun, finish
from loadtest.phases import ANSWERED, Phase
from loadtest.records import OK, Record
from loadtest.report import Report, analyse, phase_table, verdicts
from loadtest.runner import Endpoints, run_load

MIX = {"transfer": 15, "strong": 25, "exact": 15, "bounded": 15, "cached": 15, "snapshot": 3}
FAIL_CLOSED = ("transfer", "strong", "snapshot")
STAY_AVAILABLE = ("exact", "bounded", "cached")
DEADLINE = "1s"
"""The ledgers' deadline: how long a strong read or transfer waits for a cut leader."""
SHARES = {"baseline": 0.35, "partition": 0.3, "healed": 0.35}
"""The partition's share stays under half: strong operations refused during it assess
nothing, and the ledger checker calls a run where fewer than half of them have a known
outcome inconclusive."""
NO_PUBSUB = "127.0.0.1:9"
"""Port 9 (discard): nothing listens; no Pub/Sub call is made in this scenario."""
GRACE = 0.5
"""Seconds past the ledger's deadline for its 503 to arrive."""
RECOVERED_TAIL = 3
"""After the heal, each mode's last this-many operations must all be answered."""


@dataclass
class Cuts:
    """When the leader link was certainly cut (epoch seconds): from the answer to the cut
    request (``cut``) to the sending of the heal request (``heal``)."""

    start: float = 0.0
    cut: float = 0.0
    heal: float = 0.0
    end: float = 0.0

    def phases(self) -> tuple[Phase, ...]:
        return (
            Phase("baseline", self.start, self.cut),
            Phase("partition", self.cut, self.heal),
            Phase("healed", self.heal, self.end),
        )


@dataclass
class PartitionRun:
    lab: LabRun
    expectations: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.lab.passed and all(ok for _, ok in self.expectations)


@contextlib.contextmanager
def spanner_emulator(home: Path) -> Iterator[dict[str, str]]:
    """The Spanner emulator on free ports with its state in ``home``; its client variables."""
    environ = dict(os.environ, CAPLAB_HOME=str(home))
    config = manager.StackConfig.from_environ(
        environ, port_overrides=manager.free_ports((SPANNER,)), emulators=(SPANNER,)
    )
    try:
        manager.up(config)
        yield {"PUBSUB_EMULATOR_HOST": NO_PUBSUB, **manager.client_environment(config)}
    finally:
        manager.down(config)


@contextlib.contextmanager
def chaos_links(spanner: str, log: Path) -> Iterator[tuple[int, int, str]]:
    """``caplab chaos`` in front of ``spanner``: (leader port, replica port, control URL)."""
    leader, replica, control = manager.free_port(), manager.free_port(), manager.free_port()
    host, port = spanner.rsplit(":", 1)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "caplab", "chaos", "--leader", f"{leader}:{host}:{port}",
             "--replica", f"{replica}:{host}:{port}", "--control-port", str(control)],
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    chaos = launcher.RunningService("caplab chaos", control, process, log)
    try:
        launcher.wait_ready(chaos, timeout=30, path="/links")
        yield leader, replica, chaos.url
    finally:
        launcher.stop(chaos)


@contextlib.contextmanager
def ledgers(
    environ: Mapping[str, str], leader: int, replica: int, log_dir: Path
) -> Iterator[tuple[str, str]]:
    """A ledger behind each link: (leader-side URL, replica-side URL)."""
    started: list[launcher.RunningService] = []
    try:
        for side, port in (("leader", leader), ("replica", replica)):
            env = dict(
                environ, SPANNER_EMULATOR_HOST=f"127.0.0.1:{port}", CAPLAB_LEDGER_DEADLINE=DEADLINE
            )
            log = log_dir / f"ledger-{side}.log"
            started.append(launcher.start("ledger", manager.free_port(), env, log))
        for service in started:
            launcher.wait_ready(service)
        yield started[0].url, started[1].url
    finally:
        for service in started:
            launcher.stop(service)


async def _drive(
    config: LoadConfig, endpoints: Endpoints, control: str, console: Console, cuts: Cuts
) -> Any:
    """The run, with the link cut and healed on schedule."""
    baseline = config.duration * SHARES["baseline"]
    partition = config.duration * SHARES["partition"]
    controller: asyncio.Task[None] | None = None

    async def post(http: httpx.AsyncClient, action: str) -> tuple[float, float]:
        """(sent, answered): the link changed somewhere in between."""
        sent = time.time()
        response = await http.post(f"{control}/links/leader/{action}")
        response.raise_for_status()
        return sent, time.time()

    async def operate(start: float) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            await asyncio.sleep(max(0.0, start + baseline - time.time()))
            _, cuts.cut = await post(http, "partition")
            console.print(f"[red]leader link cut[/] at {cuts.cut - start:.2f} s")
            await asyncio.sleep(max(0.0, start + baseline + partition - time.time()))
            cuts.heal, _ = await post(http, "heal")
            console.print(f"[green]leader link healed[/] at {cuts.heal - start:.2f} s")

    async def gate(earliest: float) -> float:
        nonlocal controller
        cuts.start = earliest
        cuts.end = earliest + config.duration
        controller = asyncio.create_task(operate(earliest))
        return earliest

    try:
        result = await run_load(config, endpoints, console, gate=gate)
        assert controller is not None
        await controller
        return result
    finally:
        if controller is not None and not controller.done():
            controller.cancel()


def _answered_while_cut(records: list[Record], wall_offset: float, cuts: Cuts) -> list[Record]:
    return [
        r
        for r in records
        if r.outcome == OK
        and r.invoked + wall_offset >= cuts.cut
        and r.returned + wall_offset <= cuts.heal
    ]


def expectations(report: Report, cuts: Cuts) -> list[tuple[str, bool]]:
    """The CAP expectations of the module docstring, as (statement, held)."""
    result = report.result
    phases = {summary.phase.name: summary for summary in report.phases}
    checks = []
    deadline = parse_duration(DEADLINE).total_seconds()
    for mode in FAIL_CLOSED:
        mine = [r for r in result.records if r.kind == mode]
        wrong = _answered_while_cut(mine, result.wall_offset, cuts)
        checks.append((f"{mode}: none answered while the leader link was cut "
                       f"({len(wrong)} answered)", not wrong))  # fmt: skip
        waited = [
            r
            for r in mine
            if cuts.cut <= r.invoked + result.wall_offset <= cuts.heal - deadline - GRACE
        ]
        refused = sum(r.outcome not in ANSWERED for r in waited)
        checks.append((f"{mode}: refused when called while cut, a deadline before the heal "
                       f"({refused}/{len(waited)})", refused == len(waited)))  # fmt: skip
    for mode in STAY_AVAILABLE:
        during = phases["partition"].modes.get(mode)
        if during is None:
            continue
        checks.append(
            (f"{mode}: every read scheduled during the partition answered "
             f"({during.answered}/{during.attempted})", during.answered == during.attempted)
        )  # fmt: skip
    healed = [r for r in result.records if r.intended + result.wall_offset >= cuts.heal]
    for mode in MIX:
        tail = [r for r in healed if r.kind == mode][-RECOVERED_TAIL:]
        if tail:
            answered = sum(r.outcome in ANSWERED for r in tail)
            checks.append(
                (f"{mode}: answering again after the heal (last {len(tail)}: {answered} answered)",
                 answered == len(tail))
            )  # fmt: skip
    return checks


def run(
    console: Console,
    duration: float = 30.0,
    out: Path | None = None,
    rate: float = 40.0,
    environ: Mapping[str, str] | None = None,
    seed: int = 1,
    brief: bool = False,
) -> PartitionRun:
    """The scenario of the module docstring. With ``environ`` (a running stack's client
    variables, e.g. from ``make demo``) its Spanner emulator is used instead of a new one;
    ``brief`` prints only the phase table and the expectations (the report is written)."""
    config = LoadConfig(
        rate=rate,
        duration=duration,
        warmup=min(1.0, duration / 10),
        mix=dict(MIX),
        accounts=10,
        staleness="500ms",
        seed=seed,
        timeout=5.0,
    )
    cuts = Cuts()
    with (
        tempfile.TemporaryDirectory(prefix="caplab-partition-") as scratch,
        contextlib.ExitStack() as stack,
    ):
        home = Path(scratch)
        if environ is None:
            console.print("starting the Spanner emulator on free ports…")
            environ = stack.enter_context(spanner_emulator(home))
        environ = dict(os.environ, **environ)
        spanner = environ["SPANNER_EMULATOR_HOST"]
        leader, replica, control = stack.enter_context(chaos_links(spanner, home / "chaos.log"))
        leader_url, replica_url = stack.enter_context(ledgers(environ, leader, replica, home))
        console.print(
            f"leader-side ledger {leader_url} (strong reads, transfers, snapshots); replica-side "
            f"ledger {replica_url} (exact, bounded, cached reads); chaos control {control}"
        )
        endpoints = Endpoints(leader_url, replica_url=replica_url)
        result = asyncio.run(_drive(config, endpoints, control, console, cuts))
    console.print(f"checking {len(result.records):,} operations…")
    report = analyse(result, phases=cuts.phases())
    directory = out or default_home(os.environ) / "lab" / "partition" / result.run_id
    lab = finish(report, Console(file=io.StringIO()) if brief else console, directory)
    if brief:
        console.print(phase_table(report))
        for check, outcome, passed in verdicts(report):
            console.print(f"{'[green]✓[/]' if passed else '[red]✗[/]'} {check}: {outcome}")
        console.print(f"report: {lab.paths['report']}")
    scenario = PartitionRun(lab, expectations(report, cuts))
    for statement, held in scenario.expectations:
        console.print(f"{'[green]✓[/]' if held else '[red]✗[/]'} {statement}", highlight=False)
    return scenario


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("lab", help="self-contained lab scenarios")
    scenarios = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    partition = scenarios.add_parser(
        "partition",
        help="baseline / leader link cut / healed: CP strong reads, AP stale reads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    partition.add_argument("--duration", type=float, default=30.0, help="seconds (all phases)")
    partition.add_argument("--rate", type=float, default=40.0, help="operations per second")
    partition.add_argument("--seed", type=int, default=1)
    partition.add_argument(
        "--out", type=Path, help="report directory (default $CAPLAB_HOME/lab/partition/RUN)"
    )
    partition.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.duration < 3:
        raise CaplabError("--duration: at least 3 s (three phases)")
    scenario = run(Console(), args.duration, args.out, args.rate, seed=args.seed)
    return 0 if scenario.passed else 2
