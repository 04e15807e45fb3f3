"""A run's report: the analysis (statistics + every checker), printed as a console table,
written as JSON, and as an HTML page with plots a person can open.

Files written into the output directory:

- ``report.html``: tables and plots (latency percentile spectrum per mode, staleness
  distributions, the t-visibility curve) as embedded PNGs;
- ``report.json``: every figure, verdict and the encoded HDR histograms;
- ``history.json``: the ledger history (``caplab check history.json`` repeats the
  check); ``records.json``: every operation as recorded.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure
from rich import box
from rich.console import Console
from rich.table import Table

from loadtest.checks.bank import BankResult, check_bank
from loadtest.checks.serializable import check_serializable, ledger_history
from loadtest.checks.staleness import ModeStaleness, check_staleness
from loadtest.checks.visibility import Visibility, check_visibility
from loadtest.config import OPERATIONS
from loadtest.linearizability import LedgerResult, dump_history
from loadtest.linearizability.ledger import PROPERTY
from loadtest.runner import RunResult
from loadtest.stats import KindStats, kind_stats, percentiles_ms, scheduling_lag


@dataclass
class Report:
    result: RunResult
    stats: dict[str, KindStats]
    lag: HdrHistogram
    serializability: LedgerResult
    bank: BankResult
    staleness: dict[str, ModeStaleness]
    visibility: Visibility | None


def analyse(result: RunResult) -> Report:
    return Report(
        result=result,
        stats=kind_stats(result),
        lag=scheduling_lag(result),
        serializability=check_serializable(result),
        bank=check_bank(result),
        staleness=check_staleness(result),
        visibility=check_visibility(result),
    )


def to_json(report: Report) -> dict[str, Any]:
    result = report.result
    config = dict(result.config.__dict__)
    return {
        "run_id": result.run_id,
        "ledger_url": result.endpoints.ledger_url,
        "activity_url": result.endpoints.activity_url,
        "config": config,
        "notes": result.notes,
        "operations": len(result.records),
        "scheduling_lag_ms": percentiles_ms(report.lag),
        "modes": {kind: stats.to_json() for kind, stats in report.stats.items()},
        "strict_serializability": report.serializability.to_json(),
        "bank_invariant": report.bank.to_json(),
        "staleness": {mode: s.to_json() for mode, s in report.staleness.items()},
        "t_visibility": report.visibility.to_json() if report.visibility else None,
    }


# ---- console ---------------------------------------------------------------------------


def _verdict_text(report: Report) -> list[tuple[str, str, bool]]:
    """(check, outcome, passed) lines shared by the console and the HTML page."""
    ledger = report.serializability
    lines = [
        (
            f"{PROPERTY} (strong reads, snapshots, transfers)",
            f"{ledger.headline()}: {ledger.coverage()}",
            ledger.passed,
        ),
        (
            "bank invariant (strong snapshots)",
            f"{'holds' if report.bank.holds else 'VIOLATED'} in "
            f"{report.bank.snapshots - len(report.bank.violations)}/{report.bank.snapshots} "
            f"snapshots (total {report.bank.expected_total} cents)",
            report.bank.holds,
        ),
    ]
    for mode, s in report.staleness.items():
        violations = len(s.bound_violations) + len(s.snapshot_violations)
        lines.append(
            (
                f"{mode} reads: staleness bound and read timestamp",
                f"{'honoured' if not violations else 'VIOLATED'}: {s.reads} reads, "
                f"{len(s.bound_violations)} over their bound, {len(s.snapshot_violations)} "
                f"inconsistent with their read timestamp, {s.skipped} not assessable",
                not violations,
            )
        )
    if report.visibility is None:
        lines.append(("t-visibility (activity feed)", "skipped: no activity reads", True))
    else:
        v = report.visibility
        lines.append(
            (
                "t-visibility (activity feed)",
                f"{v.samples} samples from {v.reads} reads; {v.never_seen} transfers never seen",
                True,
            )
        )
    return lines


def print_console(report: Report, console: Console) -> None:
    latency = Table(
        title=f"caplab load {report.result.run_id}: latency from intended start (ms)",
        box=box.SIMPLE_HEAD,
    )
    for column in ("mode", "p50", "p90", "p99", "p99.9", "max", "req/s", "errors", "late"):
        latency.add_column(column, justify="left" if column == "mode" else "right")
    for kind, stats in report.stats.items():
        p = percentiles_ms(stats.latency)
        latency.add_row(
            kind,
            *(f"{p[key]:.2f}" for key in ("p50", "p90", "p99", "p99.9", "max")),
            f"{stats.throughput:.1f}",
            str(stats.errors),
            str(stats.late),
        )
    console.print(latency)
    staleness = Table(title="staleness of balance reads", box=box.SIMPLE_HEAD)
    for column in ("mode", "reads", "fresh", "stale p50 ms", "stale p99 ms", "max k", "over bound"):
        staleness.add_column(column, justify="left" if column == "mode" else "right")
    for mode, s in report.staleness.items():
        summary = s.to_json()
        stale_ms: dict[str, float] = summary["stale_ms"]  # type: ignore[assignment]
        staleness.add_row(
            mode,
            str(s.reads),
            f"{s.fresh_fraction:.1%}",
            f"{stale_ms['p50']:.1f}",
            f"{stale_ms['p99']:.1f}",
            str(summary["max_versions_behind"]),
            str(len(s.bound_violations)),
        )
    console.print(staleness)
    dropped = sum(report.result.dropped.values())
    if dropped:
        console.print(f"[yellow]{dropped} arrivals dropped (more than --max-in-flight)[/]")
    lag = percentiles_ms(report.lag)
    console.print(
        f"scheduling lag: p50 {lag['p50']:.3f} ms, p99 {lag['p99']:.3f} ms, max {lag['max']:.3f} ms"
    )
    for note in report.result.notes:
        console.print(f"[dim]note: {note}[/]")
    for check, outcome, passed in _verdict_text(report):
        mark = "[green]✓[/]" if passed else "[red]✗[/]"
        console.print(f"{mark} {check}: {outcome}", highlight=False)
    for line in report.serializability.lines():
        console.print(line, highlight=False, markup=False)


# ---- plots -----------------------------------------------------------------------------


MODE_COLOURS: dict[str, str] = {kind: f"C{i}" for i, kind in enumerate(OPERATIONS)}
"""One colour per mode across every chart."""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def latency_spectrum_plot(report: Report) -> str:
    """Latency by percentile, one line per mode (x: 1/(1−p) on a log axis, as HdrHistogram
    plots do, so the tail gets the room)."""
    figure = Figure(figsize=(8, 4.5))
    axes = figure.subplots()
    nines = [i / 20 for i in range(0, 81)]  # 0 .. 4 nines
    for kind, stats in report.stats.items():
        if stats.latency.get_total_count() == 0:
            continue
        xs = [10**n for n in nines]
        ys = [stats.latency.get_value_at_percentile(100 * (1 - 10**-n)) / 1000 for n in nines]
        axes.plot(xs, ys, label=kind, color=MODE_COLOURS[kind])
    axes.set_xscale("log")
    axes.set_yscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000]
    axes.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency from intended start (ms)")
    axes.set_title("Latency percentile spectrum per mode")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    return _png(figure)


def staleness_plot(report: Report) -> str:
    """Left: CDF of how far behind (ms) each read was; right: PBS k-staleness."""
    figure = Figure(figsize=(10, 4))
    left, right = figure.subplots(1, 2)
    for mode, s in report.staleness.items():
        if not s.reads:
            continue
        values = sorted(t * 1000 for t in s.seconds_behind)
        ys = [(i + 1) / len(values) for i in range(len(values))]
        colour = MODE_COLOURS[mode]
        left.step(values, ys, where="post", label=mode, color=colour)
        right.plot(
            range(len(s.k_staleness())), s.k_staleness(), marker="o", label=mode, color=colour
        )
    left.set_xlabel("time behind the newest committed version (ms)")
    left.set_ylabel("fraction of reads")
    left.set_title("t-staleness (CDF)")
    left.grid(True, alpha=0.3)
    left.legend()
    right.set_xlabel("k (versions)")
    right.set_ylabel("P(read within k versions of newest)")
    right.set_title("k-staleness")
    right.set_ylim(0, 1.05)
    right.grid(True, alpha=0.3)
    right.legend()
    return _png(figure)


def visibility_plot(visibility: Visibility) -> str:
    figure = Figure(figsize=(8, 4))
    axes = figure.subplots()
    points = [
        (b.high_ms if not math.isinf(b.high_ms) else b.low_ms * 2, b.probability)
        for b in visibility.bins
        if b.samples
    ]
    if points:
        xs, ys = zip(*points, strict=True)
        axes.plot(xs, ys, marker="o")
    axes.set_xscale("log")
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("time since commit (ms, upper edge of bin)")
    axes.set_ylabel("P(transfer visible in the feed)")
    axes.set_title("t-visibility of the activity feed")
    axes.grid(True, which="both", alpha=0.3)
    return _png(figure)


# ---- HTML ------------------------------------------------------------------------------


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report) -> str:
    result = report.result
    rows = []
    for kind, stats in report.stats.items():
        p = percentiles_ms(stats.latency)
        s = percentiles_ms(stats.service)
        rows.append(
            [kind, *(f"{p[k]:.2f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
             f"{s['p99']:.2f}", f"{stats.throughput:.1f}", str(stats.errors), str(stats.late),
             str(stats.dropped)]
        )  # fmt: skip
    latency = _html_table(
        ["mode", "p50", "p90", "p99", "p99.9", "max", "service-time p99", "req/s", "errors",
         "late starts", "dropped"],
        rows,
    )  # fmt: skip
    staleness_rows = [
        [mode, str(s.reads), f"{s.fresh_fraction:.1%}", str(s.to_json()["stale_ms"]),
         str(max(s.versions_behind, default=0)), str(len(s.bound_violations)),
         str(len(s.snapshot_violations)), str(s.served_by)]
        for mode, s in report.staleness.items()
    ]  # fmt: skip
    staleness = _html_table(
        ["mode", "reads", "fresh", "time behind (ms, stale reads)", "max versions behind",
         "bound violations", "read-timestamp violations", "served by"],
        staleness_rows,
    )  # fmt: skip
    verdicts = "".join(
        f"<li class={'ok' if passed else 'bad'}><b>{html.escape(check)}</b>: "
        f"{html.escape(outcome)}</li>"
        for check, outcome, passed in _verdict_text(report)
    )
    anomalies = report.serializability.lines()
    counterexamples = f"<pre>{html.escape(chr(10).join(anomalies))}</pre>" if anomalies else ""
    lag = percentiles_ms(report.lag)
    images = [
        ("Latency", latency_spectrum_plot(report)),
        ("Staleness", staleness_plot(report)),
    ]
    if report.visibility is not None:
        images.append(("t-visibility", visibility_plot(report.visibility)))
    figures = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
        f"src='data:image/png;base64,{data}'>"
        for title, data in images
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    config = html.escape(json.dumps(result.config.__dict__, sort_keys=True))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>caplab load {html.escape(result.run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
li.ok::marker {{ content: "✓ "; color: green; }} li.bad::marker {{ content: "✗ "; color: red; }}
code, pre {{ background: #f6f6f6; }}
</style></head><body>
<h1>caplab load — run {html.escape(result.run_id)}</h1>
<p>Ledger <code>{html.escape(result.endpoints.ledger_url)}</code>; {len(result.records)}
operations over {result.config.duration:g} s ({result.config.warmup:g} s warm-up excluded from
statistics). Latency is measured from each operation's <em>intended</em> start (open loop, no
coordinated omission); service time from its actual send. Scheduling lag p99
{lag["p99"]:.3f} ms.</p>
<p><small>Configuration: <code>{config}</code></small></p>
<ul>{notes}</ul>
<h2>Verdicts</h2><ul>{verdicts}</ul>{counterexamples}
<h2>Latency per mode (ms)</h2>{latency}
<h2>Staleness per read mode</h2>{staleness}
{figures}
</body></html>
"""


def write_report(report: Report, directory: Path) -> dict[str, Path]:
    """Write report.html, report.json, history.json and records.json; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": directory / "report.html",
        "json": directory / "report.json",
        "history": directory / "history.json",
        "records": directory / "records.json",
    }
    paths["report"].write_text(render_html(report))
    paths["json"].write_text(json.dumps(to_json(report), indent=2, default=str))
    history = dump_history(ledger_history(report.result), model="ledger")
    paths["history"].write_text(json.dumps(history))
    result = report.result
    records = [r.to_json() for r in [*result.setup, *result.records]]
    paths["records"].write_text(json.dumps(records))
    return paths
