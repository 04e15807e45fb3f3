"""A linearizability checker: Porcupine's algorithm as a small Python library.

Give it a sequential :class:`Model` (initial state, step function, partition by key) and a
history of operations with call and return times; :func:`check` splits the history by key
(P-compositionality), runs the Wing & Gong / Lowe depth-first search over linearization points
on each key with memoization of (linearized set, state), and returns a verdict per key plus a
minimal counterexample for failing keys. Models shipped: :data:`KV` (read / write / cas) and
:data:`LEDGER` (a versioned register per account, transfers projected on both accounts).
The JSON history format is documented in :mod:`loadtest.linearizability.history`.
"""

from __future__ import annotations

from loadtest.linearizability.check import CheckResult, Counterexample, check
from loadtest.linearizability.history import (
    History,
    HistoryFormatError,
    Operation,
    dump_history,
    load_history,
    parse_history,
)
from loadtest.linearizability.kv import KV
from loadtest.linearizability.ledger import LEDGER
from loadtest.linearizability.model import Model
from loadtest.linearizability.search import Verdict

MODELS: dict[str, Model] = {model.name: model for model in (KV, LEDGER)}

__all__ = [
    "KV",
    "LEDGER",
    "MODELS",
    "CheckResult",
    "Counterexample",
    "History",
    "HistoryFormatError",
    "Model",
    "Operation",
    "Verdict",
    "check",
    "dump_history",
    "load_history",
    "parse_history",
]
