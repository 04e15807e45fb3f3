"""``caplab``: the one command-line entry point.

Each area registers its own sub-commands (``emulators``, ``serve``, ``load``...) through a
``register(subparsers)`` function, so this module stays a table of contents. A
:class:`~caplab.errors.CaplabError` is printed as a one-line reason (exit 1), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from caplab.errors import CaplabError
from emulators import cli as emulators_cli
from loadtest import chaos, check_cli, load_cli
from services import cli as services_cli
from services.sink import cli as sink_cli

REGISTRARS = (
    emulators_cli.register,
    services_cli.register,
    sink_cli.register,
    check_cli.register,
    load_cli.register,
    chaos.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="caplab",
        description="Distributed-systems trade-offs on Google Cloud, made measurable.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(subparsers)
    return parser


def quiet_emulator_notices() -> None:
    """The Bigtable client warns on every connection to its emulator: expected here."""
    warnings.filterwarnings("ignore", "Connecting to Bigtable emulator", RuntimeWarning)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_emulator_notices()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CaplabError as error:
        print(f"caplab: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
