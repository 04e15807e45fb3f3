"""``caplab emulators up | down | status | env | logs``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from emulators import manager
from emulators.specs import EMULATORS

_STYLE = {
    manager.Health.HEALTHY: "green",
    manager.Health.UNHEALTHY: "yellow",
    manager.Health.DEAD: "red",
    manager.Health.NOT_STARTED: "dim",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("emulators", help="run the local emulator stack")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def port_flags(action_parser: argparse.ArgumentParser) -> None:
        for spec in EMULATORS:
            for port in spec.ports:
                action_parser.add_argument(
                    port.flag,
                    type=int,
                    dest=f"port_{port.key}",
                    metavar="PORT",
                    help=f"{port.purpose} port (default {port.default}, env {port.env})",
                )

    up = actions.add_parser("up", help="start, probe and bootstrap every emulator")
    port_flags(up)
    up.add_argument("--timeout", type=float, default=60.0, help="readiness timeout per emulator")
    up.set_defaults(handler=_up)
    for name, handler, text in (
        ("down", _down, "stop everything `up` started"),
        ("status", _status, "table of emulators and their health"),
        ("env", _env, 'print export lines: eval "$(caplab emulators env)"'),
    ):
        action = actions.add_parser(name, help=text)
        port_flags(action)
        action.set_defaults(handler=handler)
    logs = actions.add_parser("logs", help="last lines of the emulators' logs")
    logs.add_argument("name", nargs="?", choices=[s.name for s in EMULATORS])
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.set_defaults(handler=_logs)


def _config(args: argparse.Namespace, **kwargs: Any) -> manager.StackConfig:
    overrides = {
        port.key: getattr(args, f"port_{port.key}", None)
        for spec in EMULATORS
        for port in spec.ports
    }
    return manager.StackConfig.from_environ(port_overrides=overrides, **kwargs)


def print_status(config: manager.StackConfig, console: Console | None = None) -> bool:
    """Print the status table; True when every emulator is healthy."""
    rows = manager.status(config)
    table = Table(title="caplab emulators")
    for column in ("emulator", "address", "pid", "status", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.name,
            row.address,
            str(row.pid or "-"),
            f"[{_STYLE[row.health]}]{row.health}[/]",
            row.detail[:80],
        )
    (console or Console()).print(table)
    return all(row.health is manager.Health.HEALTHY for row in rows)


def _up(args: argparse.Namespace) -> int:
    config = _config(args, ready_timeout=args.timeout)
    result = manager.up(config)
    console = Console()
    for name in result.already_running:
        console.print(f"{name}: already running")
    for name in result.started:
        console.print(f"{name}: started, ready in {result.ready_seconds[name]:.2f}s")
    console.print("topology bootstrapped")
    return 0 if print_status(config, console) else 1


def _down(args: argparse.Namespace) -> int:
    stopped = manager.down(_config(args))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args: argparse.Namespace) -> int:
    return 0 if print_status(_config(args)) else 3


def _env(args: argparse.Namespace) -> int:
    print("\n".join(manager.env_lines(manager.running_config(_config(args)))))
    return 0


def _logs(args: argparse.Namespace) -> int:
    print(manager.logs(_config(args), args.name, args.lines))
    return 0
