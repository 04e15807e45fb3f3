"""``make demo``: the main job on the local stack, start to finish.

1. brings the emulators up (the three official ones and caplab's Cloud Tasks emulator) and
   bootstraps the topology; prints the status table and the ``env`` lines;
2. starts every service the way ``caplab serve`` does (ledger, outbox relay, activity,
   notifier, webhook sink, stand-in bank), each with ``caplab service <name>``, the
   container's command;
3. tours the ledger (CP vs AP reads), the Cloud Tasks emulator (backoff, rate limit, OIDC),
   the fan-out (read model, webhooks, payout saga), compares Bigtable row-key designs for a
   few seconds (``caplab rowkeys``), then runs the load-and-consistency lab for ``--seconds``
   and prints where its report is; then a short ``caplab lab partition`` on the same Spanner
   emulator prints its phase table;
4. always stops what it started — services first, then the emulators it brought up (a stack
   the user started with ``make up`` stays up) — even when a step fails or is interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from caplab.core import catalogue
from caplab.core.catalogue import local_service_urls
from caplab.core.clients import quiet_emulator_notices
from caplab.core.errors import CaplabError
from caplab.core.signals import stop_on_sigterm
from caplab.local import launcher, partition
from emulators import bootstrap, manager
from emulators.cli import print_status


def run(console: Console, seconds: float) -> Path:
    """Steps 2 and 3 on a running stack; the path of the lab's HTML report."""
    from caplab.local.tours import cloudtasks as tasks_tour
    from caplab.local.tours import fanout as fanout_tour
    from caplab.local.tours import ledger as ledger_tour
    from loadtest import demo as lab_demo
    from loadtest.rowkeys import cli as rowkeys

    config = manager.running_config(manager.StackConfig.from_environ())
    console.rule("services")
    environ = {
        **launcher.stand_in_environment(local_service_urls()),
        **os.environ,
        **manager.client_environment(config),
    }
    with manager.exported(environ):
        bootstrap.ensure_pubsub(local_service_urls())
    ports = catalogue.local_ports()
    with launcher.running_all(ports, environ, config.home / "services") as services:
        for service in services:
            console.print(f"{service.name}: {service.url} (log {service.log_path})")
        urls = {service.name: service.url for service in services}
        ledger_tour.run(console, urls["ledger"])
        tasks_tour.run(console)
        fanout_tour.run(console, urls)
        with manager.exported(environ):
            rowkeys.demo(console)
        report = lab_demo.run(console, urls["ledger"], urls["activity"], seconds=seconds)
    console.rule("[bold]CAP made visible: the leader link cut, then healed")
    partition.run(console, min(seconds, 15.0), environ=environ, brief=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caplab.demo", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the lab's load")
    args = parser.parse_args(argv)
    quiet_emulator_notices()
    stop_on_sigterm()
    console = Console()
    config = manager.StackConfig.from_environ()
    result = manager.UpResult()
    try:
        console.rule("emulators")
        result = manager.up(config)
        for name in result.already_running:
            console.print(f"{name}: already running")
        for name in result.started:
            console.print(f"{name}: started, ready in {result.ready_seconds[name]:.2f}s")
        print_status(config, console)
        console.rule('environment for clients: eval "$(caplab emulators env)"')
        console.print("\n".join(manager.env_lines(config)), highlight=False, soft_wrap=True)
        report = run(console, args.seconds)
        console.rule("done")
        console.print(f"lab report: {report}")
    except CaplabError as error:
        console.print(f"[red]caplab: error: {error}[/]")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        # Stop only what this demo started: a stack the user brought up stays up.
        stopped = manager.down(config, only=result.started)
        console.print(f"emulators stopped: {', '.join(stopped) or 'none (they were already up)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
