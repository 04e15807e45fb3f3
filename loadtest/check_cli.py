"""``caplab check HISTORY.json --model kv|ledger``: check a recorded history.

- ``kv``: is every key linearizable? The search stops at the first key that is not and prints
  its minimal counterexample; ``--timeout`` bounds the whole search (shared fairly between
  keys) and a key left undecided is reported with its longest partial linearization.
- ``ledger``: is the history strictly serializable? Each anomaly found is printed with its
  class (G0, G1a, G1b, G1c, G-single, G2, ``-realtime`` when real time is needed, or a
  non-cycle anomaly) and the operations and dependencies that prove it.

``--html OUT.html`` draws the history (per key or account: operations as bars on a time axis,
one row per client) with the counterexample highlighted. Exit status: 0 the property holds,
2 it does not, 3 unknown (search timed out) or inconclusive (too little could be assessed).

Imports only the checker: starting this command costs no plotting or HTTP library.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from caplab.core.errors import CaplabError
from loadtest.linearizability import (
    MODEL_NAMES,
    MODELS,
    CheckResult,
    HistoryFormatError,
    LedgerResult,
    check,
    check_ledger,
    load_history,
)

_COLOUR = {0: "32", 2: "31", 3: "33"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check a history file (linearizability, or strict serializability of the ledger)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("history", type=Path, help="history JSON (caplab-history/1)")
    parser.add_argument(
        "--model", choices=MODEL_NAMES, help="what the history is of (default: the file's)"
    )
    parser.add_argument("--timeout", type=float, help="kv: give up after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--html", type=Path, help="also draw the history into this HTML file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    try:
        history = load_history(args.history)
    except (OSError, HistoryFormatError) as error:
        raise CaplabError(f"cannot read history: {error}") from error
    name = args.model or history.model
    if name not in MODEL_NAMES:
        raise CaplabError(
            f"choose a model with --model ({', '.join(MODEL_NAMES)}); the file names {name!r}"
        )
    try:
        result: CheckResult | LedgerResult = (
            check_ledger(history.operations)
            if name == "ledger"
            else check(MODELS[name], history.operations, args.timeout)
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CaplabError(f"the history does not fit the {name} model: {error!r}") from error
    if args.html:
        from loadtest.linearizability.visualize import write_html

        write_html(args.html, history.operations, result, title=args.history.name)
    status = result.exit_status
    if args.json:
        print(json.dumps(result.to_json(), indent=2), file=out)
        return status
    headline = result.headline()
    if out is not None and out.isatty():
        headline = f"\033[1;{_COLOUR[status]}m{headline}\033[0m"
    print(f"{headline} ({name} model): {result.coverage()}", file=out)
    for line in result.lines():
        print(line, file=out)
    if args.html:
        print(f"drawn: {args.html}", file=out)
    return status
