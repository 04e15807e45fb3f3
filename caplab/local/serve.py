"""``caplab service <name>`` (one service in the foreground: the container's command) and
``caplab serve`` (every service in the catalogue, locally, against the running emulators).

Importing this module imports neither the emulators nor the lab: the container command pays
only for the service it runs."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from caplab.core import catalogue
from caplab.core.catalogue import local_service_urls
from caplab.core.errors import CaplabError
from caplab.core.signals import stop_on_sigterm


def register(subparsers: Any) -> None:
    service = subparsers.add_parser(
        "service", help="run one service in the foreground on $PORT (the container command)"
    )
    service.add_argument("name", choices=sorted(catalogue.NAMES))
    service.set_defaults(handler=_service)

    serve = subparsers.add_parser(
        "serve", help="run every service locally against the running emulators (Ctrl-C stops)"
    )
    serve.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NAME=PORT",
        help="run service NAME on PORT instead of its topology port (repeatable)",
    )
    serve.add_argument(
        "--only", action="append", choices=sorted(catalogue.NAMES), help="run only these services"
    )
    serve.set_defaults(handler=_serve)


def _service(args: argparse.Namespace) -> int:
    from services.shared import runner

    runner.run(catalogue.service(args.name).factory)
    return 0


def _ports(overrides: list[str]) -> dict[str, int]:
    ports = catalogue.local_ports()
    for item in overrides:
        name, _, number = item.partition("=")
        if name not in catalogue.NAMES or not number.isdigit():
            raise CaplabError(
                f"--port expects NAME=PORT with NAME in {sorted(catalogue.NAMES)}: {item!r}"
            )
        ports[name] = int(number)
    return ports


def _serve(args: argparse.Namespace) -> int:
    # Imported here: `caplab service NAME` (the container command) shares this module and
    # must not pull in the local-only stack (rich, the emulator manager).
    from rich.console import Console
    from rich.table import Table

    from caplab.local import launcher
    from emulators import bootstrap, manager

    console = Console()
    config = manager.running_config(manager.StackConfig.from_environ())
    rows = manager.status(config)
    if not all(row.health is manager.Health.HEALTHY for row in rows):
        raise CaplabError(
            "the emulators are not all healthy; start them with `caplab emulators up`"
        )
    ports = _ports(args.port)
    names = args.only or list(catalogue.NAMES)
    urls = dict(local_service_urls(), **{n: f"http://127.0.0.1:{p}" for n, p in ports.items()})
    # The user's own variables win over the stand-ins (e.g. CAPLAB_BANK_URL for another bank).
    environ = {
        **launcher.stand_in_environment(urls),
        **os.environ,
        **manager.client_environment(config),
    }
    with manager.exported(environ):
        bootstrap.ensure_pubsub(urls)  # push endpoints follow the ports chosen here
    stop_on_sigterm()  # stop the children on SIGTERM as on Ctrl-C
    with launcher.running_all({name: ports[name] for name in names}, environ) as running:
        table = Table(title="caplab services")
        for column in ("service", "url", "pid"):
            table.add_column(column)
        for service in running:
            table.add_row(service.name, service.url, str(service.process.pid))
        console.print(table)
        console.print("Ctrl-C stops them.")
        while all(service.process.poll() is None for service in running):
            time.sleep(0.5)
        exited = [s.name for s in running if s.process.poll() is not None]
        raise CaplabError(f"service(s) exited: {', '.join(exited)}")
