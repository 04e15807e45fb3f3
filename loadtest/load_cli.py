"""``caplab load``: open-loop load on the ledger, then every checker, then the report.

Against the local services by default (``caplab serve`` ports); ``--target URL`` aims at a
deployed Cloud Run ledger and authenticates every request with a Google ID token (the
activity URL too, when given). Exit status 0 when every check passes, 2 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from caplab.core.catalogue import local_service_urls
from caplab.core.environment import default_home
from loadtest.auth import IdTokenAuth, TokenSource, google_id_token
from loadtest.config import DEFAULT_MIX, LoadConfig, parse_mix
from loadtest.linearizability import LedgerVerdict
from loadtest.report import Report, analyse, print_console, write_report
from loadtest.runner import Endpoints, run_load


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load",
        help="open-loop load on the ledger with consistency checks and a report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = LoadConfig()
    urls = local_service_urls()
    where = parser.add_argument_group("where")
    where.add_argument("--ledger-url", default=urls["ledger"], help="ledger base URL (local)")
    where.add_argument("--activity-url", help="activity service base URL (t-visibility)")
    where.add_argument(
        "--replica-url",
        help="ledger for stale and cached reads (one behind caplab chaos' replica link)",
    )
    where.add_argument("--target", metavar="URL", help="deployed ledger URL: use Google ID tokens")
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
    parser.set_defaults(handler=_run)


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


def run_lab(
    config: LoadConfig,
    endpoints: Endpoints,
    console: Console,
    out: Path | None = None,
) -> LabRun:
    """Run the load, check the history, print the table and write the report files."""
    result = asyncio.run(run_load(config, endpoints, console))
    console.print(f"checking {len(result.records)} operations…")
    report = analyse(result)
    print_console(report, console)
    directory = out or default_home(os.environ) / "load" / result.run_id
    paths = write_report(report, directory)
    console.print(f"report: {paths['report']}  (JSON: {paths['json']})")
    return LabRun(report, paths)


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


def _run(args: argparse.Namespace) -> int:
    config = config_from(args)
    lab = run_lab(config, endpoints_from(args), Console(), args.out)
    return lab.status
