"""``caplab rowkeys``: compare Bigtable row-key designs and partitioning schemes.

Writes one seeded transfer workload under every design into its own table, times the
product's queries against each, models how Bigtable would split the tablets, compares
range, hash-mod-N and consistent-hashing partitioning, then prints the tables and writes
``rowkeys.json`` and ``rowkeys.html``.

Against the local Bigtable emulator by default (``BIGTABLE_EMULATOR_HOST``, as set by
``eval "$(caplab emulators env)"``). ``--project``/``--instance`` aim at a real instance
instead and read the tablet boundaries with SampleRowKeys (that path needs credentials and
creates billable tables; it is not exercised by caplab's tests). The tables are deleted at
the end unless ``--keep``. Exit status 0, or 2 when a design's query answered wrongly.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console

from caplab.core.durations import DurationError, parse_duration
from caplab.core.environment import GcpSettings, config_from, default_home
from loadtest.config import LoadConfigError
from loadtest.rowkeys import lab, report
from loadtest.rowkeys.lab import RowkeysError
from loadtest.rowkeys.tablets import ModelConfig
from loadtest.rowkeys.workload import WorkloadConfig

EMULATOR_VARIABLE = "BIGTABLE_EMULATOR_HOST"


def _seconds(text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rowkeys",
        help="compare Bigtable row-key designs and partitioning schemes, measured and drawn",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    config, workload, model = lab.LabConfig(), WorkloadConfig(), ModelConfig()
    where = parser.add_argument_group("where")
    where.add_argument("--project", help="a real Google Cloud project (with --instance)")
    where.add_argument("--instance", help="a real Bigtable instance (with --project)")
    where.add_argument(
        "--out", type=Path, help="report directory (default $CAPLAB_HOME/rowkeys/RUN)"
    )
    where.add_argument("--keep", action="store_true", help="keep the lab's tables")
    load = parser.add_argument_group("workload")
    load.add_argument("--rate", type=float, default=workload.rate, help="transfers per second")
    load.add_argument(
        "--duration",
        type=_seconds,
        default=workload.duration,
        metavar="DURATION",
        help=f"of commit times, e.g. 10s (default {workload.duration:g}s)",
    )
    load.add_argument("--accounts", type=int, default=workload.accounts)
    load.add_argument("--zipf", type=float, default=workload.zipf, help="account skew s")
    load.add_argument("--arrivals", choices=("constant", "poisson"), default=workload.arrivals)
    load.add_argument("--seed", type=int, default=workload.seed)
    reads = parser.add_argument_group("queries")
    reads.add_argument("--queries", type=int, default=config.queries, help="samples of each")
    reads.add_argument("--page", type=int, default=config.page, help="feed page size")
    reads.add_argument(
        "--range",
        dest="range_seconds",
        type=_seconds,
        metavar="DURATION",
        default=config.range_seconds,
        help="time-range query length (1s)",
    )
    keys = parser.add_argument_group("designs and tablets")
    keys.add_argument("--salt-buckets", type=int, default=config.salt_buckets)
    keys.add_argument(
        "--window",
        type=_seconds,
        default=model.window,
        metavar="DURATION",
        help="replay window (500ms)",
    )
    keys.add_argument(
        "--warmup",
        type=_seconds,
        default=model.warmup,
        metavar="DURATION",
        help="windows before this shape the tablets but are not averaged (2s)",
    )
    keys.add_argument(
        "--tablets",
        type=int,
        default=model.tablets,
        help="tablets' worth of data in the run (size and load split thresholds)",
    )
    keys.add_argument(
        "--node-write-rate",
        type=float,
        default=config.node_write_rate,
        help="rows/s one node writes (Bigtable SSD: 14,000)",
    )
    keys.add_argument(
        "--target-rate",
        type=float,
        default=config.target_rate,
        help="row writes/s to size the cluster for",
    )
    schemes = parser.add_argument_group("partitioning")
    schemes.add_argument("--nodes", type=int, default=config.nodes, help="grow from N to N+1")
    schemes.add_argument("--virtual-nodes", type=int, default=config.virtual_nodes)
    parser.set_defaults(handler=_run)


def target_from(
    project: str | None, instance: str | None, environ: Mapping[str, str]
) -> lab.Target:
    """The emulator when ``BIGTABLE_EMULATOR_HOST`` is set, a real instance when both
    ``project`` and ``instance`` are given; anything else is refused (never a silent
    default that reaches the cloud)."""
    emulator = environ.get(EMULATOR_VARIABLE)
    if project or instance:
        if not (project and instance):
            raise RowkeysError("give both --project and --instance for a real instance")
        if emulator:
            raise RowkeysError(
                f"{EMULATOR_VARIABLE} is set, so the client would talk to the emulator: unset it "
                "to use --project/--instance"
            )
        real = dict(environ, GOOGLE_CLOUD_PROJECT=project, CAPLAB_BIGTABLE_INSTANCE=instance)
        return lab.Target(GcpSettings.from_config(config_from(real)), None)
    if not emulator:
        raise RowkeysError(
            f"no Bigtable emulator: {EMULATOR_VARIABLE} is not set. Start the stack and export "
            'its variables (caplab emulators up; eval "$(caplab emulators env)"), or give '
            "--project and --instance for a real instance"
        )
    return lab.Target(GcpSettings.from_config(config_from(environ)), emulator)


def config_from_args(args: argparse.Namespace) -> lab.LabConfig:
    try:
        return lab.LabConfig(
            workload=WorkloadConfig(
                rate=args.rate,
                duration=args.duration,
                accounts=args.accounts,
                zipf=args.zipf,
                seed=args.seed,
                arrivals=args.arrivals,
            ),
            model=ModelConfig(window=args.window, warmup=args.warmup, tablets=args.tablets),
            queries=args.queries,
            page=args.page,
            range_seconds=args.range_seconds,
            salt_buckets=args.salt_buckets,
            node_write_rate=args.node_write_rate,
            target_rate=args.target_rate,
            nodes=args.nodes,
            virtual_nodes=args.virtual_nodes,
        )
    except (ValueError, LoadConfigError) as error:
        raise RowkeysError(str(error)) from error


def run_and_report(
    config: lab.LabConfig,
    target: lab.Target,
    console: Console,
    out: Path | None = None,
    keep: bool = False,
) -> tuple[lab.LabResult, dict[str, Path]]:
    """Run the lab, print its tables, write its files."""
    result = lab.run(config, target, console, keep)
    report.print_console(result, console)
    directory = out or default_home(os.environ) / "rowkeys" / result.run_id
    paths = report.write_report(result, directory)
    console.print(f"report: {paths['html']}  (JSON: {paths['json']})")
    if keep:
        console.print(f"tables kept: rowkeys-{result.run_id}-<design>")
    return result, paths


def demo(console: Console) -> Path:
    """The few-second run ``make demo`` shows (the emulator from the environment)."""
    console.rule("[bold]Row keys: where each design's writes land and what its reads cost")
    config = lab.LabConfig(
        workload=WorkloadConfig(duration=4.0), model=ModelConfig(warmup=1.0), queries=3
    )
    _, paths = run_and_report(config, target_from(None, None, os.environ), console)
    return paths["html"]


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    target = target_from(args.project, args.instance, os.environ)
    result, _ = run_and_report(config, target, Console(), args.out, args.keep)
    return 2 if result.wrong_answers else 0
