"""``caplab load``: open-loop load on the ledger, then every checker, then the report.

Against the local services by default (``caplab serve`` ports); ``--target URL`` aims at a
deployed Cloud Run ledger and authenticates every request with a Google ID token (the
activity URL too, when given). Exit status 0 when every check passes, 2 otherwise.

Beyond one process and one machine:

- ``--workers N`` runs N generator processes here, each with its part of the one seeded plan,
  and merges them into one report;
- ``--shard-out DIR|gs://BUCKET/PREFIX`` runs one part (``--shard I/N``, or the Cloud Run
  Jobs task's ``CLOUD_RUN_TASK_INDEX``/``CLOUD_RUN_TASK_COUNT``) and writes its shard to
  ``DIR/RUN`` instead of a report (exit 0 once written); every part needs the same
  ``--run-id`` (in a job it defaults to the execution's name) and ideally one ``--start-at``;
- ``caplab load merge DIR|gs://BUCKET/PREFIX/RUN`` merges a run's shards into one report.

In a Cloud Run Job the defaults come from the environment: ``CAPLAB_LOAD_TARGET``,
``CAPLAB_LOAD_ACTIVITY_URL``, ``CAPLAB_LOAD_SHARD_OUT``, ``CAPLAB_LOAD_CLOCK``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from caplab.core.catalogue import local_service_urls
from caplab.core.environment import default_home
from caplab.core.errors import CaplabError
from caplab.core.timestamps import parse_rfc3339
from loadtest.auth import IdTokenAuth, TokenSource, google_id_token
from loadtest.clock import SOURCES
from loadtest.config import DEFAULT_MIX, LoadConfig, parse_mix
from loadtest.linearizability import LedgerVerdict
from loadtest.merge import merge
from loadtest.plan import Part
from loadtest.report import Report, analyse, print_console, write_report
from loadtest.runner import Endpoints, RunResult, run_load
from loadtest.shards import open_store, read_shards, write_shard
from loadtest.workers import WorkerSpec, run_workers

EXECUTION = "CLOUD_RUN_EXECUTION"
"""The Cloud Run Jobs execution's name, the same in every task of one execution."""


@dataclass(frozen=True)
class LoadEnvironment:
    """What a Cloud Run Job task reads from its environment, once."""

    target: str | None = None
    activity_url: str | None = None
    shard_out: str | None = None
    clock: str = "host"
    execution: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> LoadEnvironment:
        return cls(
            target=environ.get("CAPLAB_LOAD_TARGET") or None,
            activity_url=environ.get("CAPLAB_LOAD_ACTIVITY_URL") or None,
            shard_out=environ.get("CAPLAB_LOAD_SHARD_OUT") or None,
            clock=environ.get("CAPLAB_LOAD_CLOCK") or "host",
            execution=environ.get(EXECUTION) or None,
        )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load",
        help="open-loop load on the ledger with consistency checks and a report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    environment = LoadEnvironment.from_environ(os.environ)
    defaults = LoadConfig()
    urls = local_service_urls()
    where = parser.add_argument_group("where")
    where.add_argument("--ledger-url", default=urls["ledger"], help="ledger base URL (local)")
    where.add_argument(
        "--activity-url",
        default=environment.activity_url,
        help="activity service base URL (t-visibility)",
    )
    where.add_argument(
        "--replica-url",
        help="ledger for stale and cached reads (one behind caplab chaos' replica link)",
    )
    where.add_argument(
        "--target",
        metavar="URL",
        default=environment.target,
        help="deployed ledger URL: use Google ID tokens",
    )
    where.add_argument("--out", type=Path, help="report directory (default $CAPLAB_HOME/load/RUN)")
    load = parser.add_argument_group("load")
    load.add_argument("--rate", type=float, default=defaults.rate, help="operations per second")
    load.add_argument("--duration", type=float, default=defaults.duration, help="seconds")
    load.add_argument("--warmup", type=float, default=defaults.warmup, help="seconds excluded")
    load.add_argument("--arrivals", choices=("constant", "poisson"), default=defaults.arrivals)
    load.add_argument(
        "--mix",
        default=",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items()),
        help="operation weights (default %(default)s)",
    )
    load.add_argument("--accounts", type=int, default=defaults.accounts)
    load.add_argument("--initial-balance", type=int, default=defaults.initial_balance, help="cents")
    load.add_argument("--max-amount", type=int, default=defaults.max_amount, help="cents")
    load.add_argument("--zipf", type=float, default=defaults.zipf, help="skew s (0 = uniform)")
    load.add_argument(
        "--staleness", default=defaults.staleness, help="for exact/bounded/cached reads"
    )
    load.add_argument("--seed", type=int, default=defaults.seed)
    load.add_argument("--timeout", type=float, default=defaults.timeout, help="per request, s")
    load.add_argument("--connections", type=int, default=defaults.connections)
    load.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight)
    scale = parser.add_argument_group("beyond one process")
    scale.add_argument(
        "--workers", type=int, default=1, help="generator processes on this machine (default 1)"
    )
    scale.add_argument(
        "--shard-out",
        metavar="DIR|gs://BUCKET/PREFIX",
        default=environment.shard_out,
        help="run one part and write its shard to LOCATION/RUN (no report)",
    )
    scale.add_argument(
        "--shard",
        type=Part.parse,
        metavar="INDEX/COUNT",
        help="which part (default: CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT)",
    )
    scale.add_argument("--run-id", help="the run's id (shards of one run share it)")
    scale.add_argument(
        "--start-at",
        metavar="WHEN",
        help="when the plan starts: RFC 3339, epoch seconds, or +SECONDS from now",
    )
    scale.add_argument(
        "--clock",
        choices=SOURCES,
        default=environment.clock,
        help="how each generator estimates its clock (default %(default)s)",
    )
    parser.set_defaults(handler=_run, environment=environment)
    merging = parser.add_subparsers(dest="action", metavar="merge", required=False)
    merger = merging.add_parser(
        "merge",
        help="merge a run's shards into one report",
        description="Merge the shards of one run (a directory or gs://BUCKET/PREFIX/RUN) into "
        "one report: histograms added exactly, one history checked on the reference clock.",
    )
    merger.add_argument("location", help="the run's shards: a directory or gs://BUCKET/PREFIX/RUN")
    merger.add_argument("--out", type=Path, help="report directory (default $CAPLAB_HOME/load/RUN)")
    merger.set_defaults(handler=_merge)


@dataclass(frozen=True)
class LabRun:
    report: Report
    paths: dict[str, Path]

    @property
    def passed(self) -> bool:
        return self.report.serializability.passed and self._other_checks_pass

    @property
    def status(self) -> int:
        """0 every check passed; 3 the only shortfall is an inconclusive serializability
        verdict (too little of the run could be assessed); 2 a check failed."""
        if self.passed:
            return 0
        inconclusive = self.report.serializability.verdict is LedgerVerdict.INCONCLUSIVE
        return 3 if inconclusive and self._other_checks_pass else 2

    @property
    def _other_checks_pass(self) -> bool:
        report = self.report
        staleness_ok = all(
            not s.bound_violations and not s.snapshot_violations for s in report.staleness.values()
        )
        return report.bank.holds and staleness_ok


def finish(report: Report, console: Console, out: Path | None) -> LabRun:
    """Print ``report`` and write its files (into ``out``, else the run's directory)."""
    print_console(report, console)
    directory = out or default_home(os.environ) / "load" / report.result.run_id
    paths = write_report(report, directory)
    console.print(f"report: {paths['report']}  (JSON: {paths['json']})")
    return LabRun(report, paths)


def run_lab(
    config: LoadConfig,
    endpoints: Endpoints,
    console: Console,
    out: Path | None = None,
    clock: str = "host",
) -> LabRun:
    """Run the load, check the history, print the table and write the report files."""
    result = asyncio.run(run_load(config, endpoints, console, clock=clock))
    console.print(f"checking {len(result.records)} operations…")
    return finish(analyse(result), console, out)


def run_lab_workers(
    config: LoadConfig,
    endpoints: Endpoints,
    workers: int,
    console: Console,
    out: Path | None = None,
    clock: str = "host",
    authenticate: bool = False,
) -> LabRun:
    """``workers`` generator processes, their shards in ``OUT/shards``, one merged report."""
    run_id = f"lab-{uuid.uuid4().hex[:8]}"
    directory = out or default_home(os.environ) / "load" / run_id
    specs = [
        WorkerSpec(
            config=config,
            ledger_url=endpoints.ledger_url,
            activity_url=endpoints.activity_url,
            replica_url=endpoints.replica_url,
            authenticate=authenticate,
            run_id=run_id,
            part=Part(index, workers),
            shard_dir=directory / "shards",
            clock=clock,
        )
        for index in range(workers)
    ]
    run_workers(specs, console)
    return merge_lab(str(directory / "shards"), console, directory)


def merge_lab(location: str, console: Console, out: Path | None = None) -> LabRun:
    """Merge the shards at ``location`` and report on the one run they make."""
    started = time.perf_counter()
    merged = merge(read_shards(open_store(location)))
    console.print(
        f"merged {len(merged.workers)} shards, {len(merged.result.records):,} operations in "
        f"{time.perf_counter() - started:.2f} s; checking…"
    )
    return finish(analyse(merged.result, merged=merged), console, out)


def endpoints_from(
    args: argparse.Namespace, token_source: TokenSource = google_id_token
) -> Endpoints:
    if not args.target:
        return Endpoints(args.ledger_url, args.activity_url, replica_url=args.replica_url)
    auth = IdTokenAuth(token_source)
    urls = [args.target, *(u for u in (args.activity_url, args.replica_url) if u)]
    auth.prefetch(urls)
    return Endpoints(args.target, args.activity_url, auth, args.replica_url)


def config_from(args: argparse.Namespace) -> LoadConfig:
    return LoadConfig(
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        arrivals=args.arrivals,
        mix=parse_mix(args.mix),
        accounts=args.accounts,
        initial_balance=args.initial_balance,
        max_amount=args.max_amount,
        zipf=args.zipf,
        staleness=args.staleness,
        seed=args.seed,
        timeout=args.timeout,
        connections=args.connections,
        max_in_flight=args.max_in_flight,
    )


def parse_start(text: str, now: float | None = None) -> float:
    """``--start-at``: epoch seconds, ``+SECONDS`` from now, or an RFC 3339 timestamp."""
    try:
        if text.startswith("+"):
            return (time.time() if now is None else now) + float(text[1:])
        return float(text)
    except ValueError:
        pass
    try:
        return parse_rfc3339(text).timestamp()
    except ValueError as error:
        raise CaplabError(
            f"--start-at: give epoch seconds, +SECONDS or an RFC 3339 time, not {text!r}"
        ) from error


def run_shard(args: argparse.Namespace, console: Console) -> str:
    """One part of the plan; its shard written to ``--shard-out``/RUN. Where it went."""
    environment: LoadEnvironment = args.environment
    part = args.shard or Part.from_environ(os.environ)
    run_id = args.run_id or (f"lab-{environment.execution}" if environment.execution else None)
    if run_id is None:
        raise CaplabError(
            "--shard-out: give --run-id (every part of one run must share it; in a Cloud Run "
            "Job it defaults to the execution's name)"
        )
    start_at = parse_start(args.start_at) if args.start_at else None

    async def gate(earliest: float) -> float:
        return earliest if start_at is None else start_at

    result: RunResult = asyncio.run(
        run_load(
            config_from(args),
            endpoints_from(args),
            console,
            run_id,
            part=part,
            gate=gate,
            clock=args.clock,
        )
    )
    store = open_store(f"{args.shard_out.rstrip('/')}/{run_id}")
    where = write_shard(result, store)
    late = sum(r.lag > result.config.late_threshold for r in result.records)
    console.print(
        f"part {part} of {run_id}: {len(result.records):,} operations ({late:,} late starts); "
        f"shard: {where}"
    )
    return where


def _run(args: argparse.Namespace) -> int:
    console = Console()
    if args.shard_out:
        if args.workers != 1:
            raise CaplabError("--shard-out runs one part: leave --workers out")
        run_shard(args, console)
        return 0
    if args.shard or args.run_id or args.start_at:
        raise CaplabError("--shard, --run-id and --start-at go with --shard-out")
    config = config_from(args)
    if args.workers < 1:
        raise CaplabError("--workers: at least 1")
    if args.workers > 1:
        endpoints = Endpoints(
            args.target or args.ledger_url, args.activity_url, replica_url=args.replica_url
        )
        lab = run_lab_workers(
            config,
            endpoints,
            args.workers,
            console,
            args.out,
            clock=args.clock,
            authenticate=bool(args.target),
        )
    else:
        lab = run_lab(config, endpoints_from(args), console, args.out, clock=args.clock)
    return lab.status


def _merge(args: argparse.Namespace) -> int:
    return merge_lab(args.location, Console(), args.out).status
