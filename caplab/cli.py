"""``caplab``: the one command-line entry point.

Each area registers its own sub-commands through a ``register(subparsers)`` function, named
here by module so it is imported only when needed: ``caplab service ledger`` (the container
command) imports the ledger and nothing of the lab, the emulators or the plots. A
:class:`~caplab.core.errors.CaplabError` is printed as a one-line reason (exit 1), never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from caplab.core.clients import quiet_emulator_notices
from caplab.core.errors import CaplabError

COMMANDS: dict[str, str] = {
    "emulators": "emulators.cli",
    "service": "caplab.local.serve",
    "serve": "caplab.local.serve",
    "sink": "caplab.local.sink.cli",
    "check": "loadtest.check_cli",
    "load": "loadtest.load_cli",
    "chaos": "loadtest.chaos",
    "lab": "caplab.local.partition",
    "rowkeys": "loadtest.rowkeys.cli",
    "deploy": "infra.deploy_check",
}
"""Sub-command -> the module whose ``register(subparsers)`` declares it."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` only (its module alone imported), or for every command."""
    parser = argparse.ArgumentParser(
        prog="caplab",
        description="Distributed-systems trade-offs on Google Cloud, made measurable.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for module in modules:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    quiet_emulator_notices()
    command = next((a for a in arguments if not a.startswith("-")), None)
    args = build_parser(command).parse_args(arguments)
    try:
        return int(args.handler(args) or 0)
    except CaplabError as error:
        print(f"caplab: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
