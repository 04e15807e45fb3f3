"""``caplab check HISTORY.json --model kv|ledger``: is a recorded history linearizable?

Prints the verdict, the time the search took, the number of keys checked and, when a key is
not linearizable, its minimal counterexample. Exit status: 0 linearizable, 2 not linearizable,
3 unknown (the search hit ``--timeout``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from caplab.core.errors import CaplabError
from loadtest.linearizability import MODELS, HistoryFormatError, Verdict, check, load_history

EXIT_STATUS = {Verdict.LINEARIZABLE: 0, Verdict.NOT_LINEARIZABLE: 2, Verdict.UNKNOWN: 3}
_COLOUR = {
    Verdict.LINEARIZABLE: "green",
    Verdict.NOT_LINEARIZABLE: "red",
    Verdict.UNKNOWN: "yellow",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check a history file for linearizability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("history", type=Path, help="history JSON (caplab-history/1)")
    parser.add_argument(
        "--model", choices=sorted(MODELS), help="sequential model (default: the file's 'model')"
    )
    parser.add_argument("--timeout", type=float, help="give up after this many seconds")
    parser.add_argument(
        "--counterexamples", type=int, default=1, help="failing keys to explain (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    try:
        history = load_history(args.history)
    except (OSError, HistoryFormatError) as error:
        raise CaplabError(f"cannot read history: {error}") from error
    name = args.model or history.model
    if name not in MODELS:
        raise CaplabError(
            f"choose a model with --model ({', '.join(sorted(MODELS))}); the file names {name!r}"
        )
    model = MODELS[name]
    try:
        result = check(model, history.operations, args.timeout, args.counterexamples)
    except (KeyError, TypeError, ValueError) as error:
        raise CaplabError(f"the history does not fit the {name} model: {error!r}") from error
    if args.json:
        console.print_json(json.dumps(result.to_json()))
        return EXIT_STATUS[result.verdict]
    colour = _COLOUR[result.verdict]
    console.print(
        f"[bold {colour}]{result.verdict}[/] ({model.name} model): {len(history.operations)} "
        f"operations, {len(result.keys)} keys, checked in {result.seconds:.3f} s"
    )
    failing = result.failing_keys()
    if failing:
        console.print(f"not linearizable keys: {', '.join(map(str, failing))}")
    for example in result.counterexamples:
        for line in example.lines(model):
            console.print(escape(line), highlight=False)
    return EXIT_STATUS[result.verdict]
