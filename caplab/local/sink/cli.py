"""``caplab sink``: the fault-injecting webhook receiver in the foreground (default port
from the topology, 8089). ``caplab serve`` starts it too, with the other services."""

from __future__ import annotations

import argparse
import os
from typing import Any

from caplab.core import catalogue


def register(subparsers: Any) -> None:
    sink = subparsers.add_parser(
        "sink", help="run the webhook sink (records deliveries; fails, slows or goes down)"
    )
    sink.add_argument("--port", type=int, default=catalogue.service("sink").port)
    sink.set_defaults(handler=_sink)


def _sink(args: argparse.Namespace) -> int:
    from services.shared import runner

    runner.run(catalogue.service("sink").factory, dict(os.environ, PORT=str(args.port)))
    return 0
