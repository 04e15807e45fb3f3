"""The lab's part of ``make demo``: a short open-loop run on the local services, every
checker, and the report. Call :func:`run` with the running ledger's URL (and the activity
service's, for the t-visibility curve)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from loadtest.config import LoadConfig
from loadtest.load_cli import run_lab
from loadtest.runner import Endpoints

DEMO_RATE = 50.0
"""Operations per second: comfortably inside what the single-transaction Spanner emulator
and a 2-core machine sustain, so the figures show the read modes rather than overload."""


def run(
    console: Console,
    ledger_url: str,
    activity_url: str | None = None,
    seconds: float = 30.0,
    out: Path | None = None,
) -> Path:
    """Drive ``seconds`` of load (2 s warm-up), print the tables and verdicts, write the
    report; return the path of ``report.html``."""
    console.rule("[bold]The lab: what each read mode costs and what it guarantees")
    config = LoadConfig(rate=DEMO_RATE, duration=seconds, warmup=min(2.0, seconds / 4))
    lab = run_lab(config, Endpoints(ledger_url, activity_url), console, out)
    return lab.paths["report"]
