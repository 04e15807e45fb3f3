"""Checkers for recorded histories: linearizability of single-key objects, strict
serializability of the ledger.

- Single-key objects (:data:`KV`: read / write / compare-and-set / append): give
  :func:`check` a sequential :class:`Model` (initial state, step function, partition by key)
  and a history of operations with call and return times; it splits the history by key
  (P-compositionality), runs the Wing & Gong / Lowe depth-first search over linearization
  points on each key with memoization of (linearized set, state), and returns a verdict per
  key plus a minimal counterexample for the failing key (Porcupine's algorithm).
- The ledger (:func:`check_ledger`): transfers write two accounts at once, so per-key search
  is not enough; the checker infers the dependency graph from versions and real time and
  looks for cycles (Elle's approach), plus the checks a graph cannot make.

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
from loadtest.linearizability.ledger import LedgerResult, LedgerVerdict, check_ledger
from loadtest.linearizability.model import Model
from loadtest.linearizability.search import Verdict

MODELS: dict[str, Model] = {KV.name: KV}
"""Single-key models, checked by :func:`check`."""
MODEL_NAMES = ("kv", "ledger")
"""Every model a history file may name (``ledger``: :func:`check_ledger`)."""

__all__ = [
    "KV",
    "MODELS",
    "MODEL_NAMES",
    "CheckResult",
    "Counterexample",
    "History",
    "HistoryFormatError",
    "LedgerResult",
    "LedgerVerdict",
    "Model",
    "Operation",
    "Verdict",
    "check",
    "check_ledger",
    "dump_history",
    "load_history",
    "parse_history",
]
