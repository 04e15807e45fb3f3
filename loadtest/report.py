"""A run's report: the analysis (statistics + every checker), printed as a console table,
written as JSON, and as an HTML page with plots a person can open.

Files written into the output directory:

- ``report.html``: the headline chart (per read mode, latency against freshness: the CP/AP
  trade-off in one picture), availability over time (phases such as a partition shaded),
  tables, the latency percentile spectrum, staleness distributions and the t-visibility
  curve, as embedded PNGs;
- ``report.json``: every figure, verdict and the encoded HDR histograms, ``"workers"`` (how
  many generators) with each one's scheduling lag, late starts and clock, and ``"phases"``
  when the run had them;
- ``history.json``: the ledger history (``caplab check history.json`` repeats the
  check); ``records.json``: every operation as recorded.

matplotlib is imported only when a page is drawn.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hdrh.histogram import HdrHistogram
from rich import box
from rich.console import Console
from rich.table import Table

from loadtest.checks.bank import BankResult, check_bank
from loadtest.checks.serializable import check_serializable, ledger_history
from loadtest.checks.staleness import ModeStaleness, check_staleness
from loadtest.checks.visibility import Visibility, check_visibility
from loadtest.config import OPERATIONS, READ_MODES
from loadtest.linearizability import LedgerResult, dump_history
from loadtest.linearizability.ledger import PROPERTY
from loadtest.merge import Merged, WorkerSummary
from loadtest.phases import Phase, PhaseSummary, summarise, timeline
from loadtest.records import resolved_view
from loadtest.runner import RunResult
from loadtest.stats import KindStats, kind_stats, percentiles_ms, scheduling_lag

if TYPE_CHECKING:
    from matplotlib.figure import Figure

VISIBILITY_EDGES_MS = (
    0, 2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 10000, math.inf,
)  # fmt: skip
"""Bins of the t-visibility curve: fine where a fan-out's delay usually lies (tens to hundreds
of milliseconds), so the curve's shape shows."""


@dataclass
class Report:
    result: RunResult
    stats: dict[str, KindStats]
    lag: HdrHistogram
    serializability: LedgerResult
    bank: BankResult
    staleness: dict[str, ModeStaleness]
    visibility: Visibility | None
    workers: list[WorkerSummary] = field(default_factory=list)
    phases: list[PhaseSummary] = field(default_factory=list)
    checked: RunResult | None = None
    """The run as the checkers saw it (unknown transfers resolved after the run count as
    completed: :func:`loadtest.records.resolved_view`)."""


def _only_worker(
    result: RunResult, stats: dict[str, KindStats], lag: HdrHistogram
) -> WorkerSummary:
    return WorkerSummary(
        index=0,
        operations=len(result.records),
        lag=lag,
        late=sum(s.late for s in stats.values()),
        dropped=sum(result.dropped.values()),
        clock=result.clock,
        start_offset=0.0,
        cpu_seconds=result.cpu_seconds,
    )


def analyse(
    result: RunResult,
    *,
    merged: Merged | None = None,
    phases: Sequence[Phase] = (),
) -> Report:
    """Every statistic and checker over ``result``. A merged run brings its merged
    histograms and per-worker figures along (``merged.result`` is ``result``)."""
    if merged is not None:
        stats, lag, workers = merged.stats, merged.lag, merged.workers
    else:
        stats, lag = kind_stats(result), scheduling_lag(result)
        workers = [_only_worker(result, stats, lag)]
    checked = dataclasses.replace(result, records=resolved_view(result.records))
    return Report(
        result=result,
        stats=stats,
        lag=lag,
        serializability=check_serializable(checked),
        bank=check_bank(checked),
        staleness=check_staleness(checked),
        visibility=check_visibility(checked, VISIBILITY_EDGES_MS),
        workers=workers,
        phases=summarise(result, phases, checked),
        checked=checked,
    )


def to_json(report: Report) -> dict[str, Any]:
    result = report.result
    config = dict(result.config.__dict__)
    return {
        "run_id": result.run_id,
        "ledger_url": result.endpoints.ledger_url,
        "activity_url": result.endpoints.activity_url,
        "replica_url": result.endpoints.replica_url,
        "config": config,
        "notes": result.notes,
        "operations": len(result.records),
        "workers": len(report.workers),
        "per_worker": [w.to_json() for w in report.workers],
        "scheduling_lag_ms": percentiles_ms(report.lag),
        "modes": {kind: stats.to_json() for kind, stats in report.stats.items()},
        "strict_serializability": report.serializability.to_json(),
        "bank_invariant": report.bank.to_json(),
        "staleness": {mode: s.to_json() for mode, s in report.staleness.items()},
        "t_visibility": report.visibility.to_json() if report.visibility else None,
        "phases": [p.to_json(result.started_wall) for p in report.phases],
    }


# ---- formatting --------------------------------------------------------------------------


def ms(value: float) -> str:
    """Milliseconds with the precision the magnitude deserves."""
    if math.isnan(value):
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1%}"


def _served_by(counts: dict[str, int]) -> str:
    return ", ".join(f"{where or 'unknown'} {n:,}" for where, n in sorted(counts.items())) or "–"


def latency_rows(report: Report) -> list[list[str]]:
    rows = []
    for kind, stats in report.stats.items():
        p = percentiles_ms(stats.latency)
        s = percentiles_ms(stats.service)
        rows.append(
            [kind, *(ms(p[k]) for k in ("p50", "p90", "p99", "p99.9", "max")), ms(s["p99"]),
             f"{stats.throughput:,.1f}", f"{stats.errors:,}", f"{stats.late:,}",
             f"{stats.dropped:,}"]
        )  # fmt: skip
    return rows


LATENCY_HEADER = ["mode", "p50", "p90", "p99", "p99.9", "max", "service p99", "req/s", "errors",
                  "late starts", "dropped"]  # fmt: skip


def staleness_rows(report: Report) -> list[list[str]]:
    rows = []
    for mode, s in report.staleness.items():
        stale: dict[str, float] = s.to_json()["stale_ms"]  # type: ignore[assignment]
        rows.append(
            [mode, f"{s.reads:,}", percent(s.fresh_fraction), ms(stale["p50"]), ms(stale["p99"]),
             ms(stale["max"]), str(max(s.versions_behind, default=0)),
             f"{len(s.bound_violations):,}", f"{len(s.snapshot_violations):,}",
             f"{s.skipped:,}", _served_by(s.served_by)]
        )  # fmt: skip
    return rows


STALENESS_HEADER = ["mode", "reads", "fresh", "stale p50 ms", "stale p99 ms", "stale max ms",
                    "max versions behind", "over bound", "read-timestamp violations",
                    "not assessable", "served by"]  # fmt: skip


def worker_rows(report: Report) -> list[list[str]]:
    rows = []
    for w in report.workers:
        lag = percentiles_ms(w.lag)
        rows.append(
            [str(w.index), f"{w.operations:,}", ms(lag["p50"]), ms(lag["p99"]), ms(lag["max"]),
             f"{w.late:,}", f"{w.dropped:,}", f"{w.cpu_per_operation * 1000:.3f}",
             w.clock.source,
             f"{w.clock.offset * 1000:+.3f} ± {w.clock.uncertainty * 1000:.3f}",
             ms(w.start_offset * 1000)]
        )  # fmt: skip
    return rows


WORKER_HEADER = ["worker", "operations", "lag p50 ms", "lag p99 ms", "lag max ms", "late starts",
                 "dropped", "CPU ms/op", "clock", "offset ± uncertainty ms",
                 "start offset ms"]  # fmt: skip


def phase_rows(report: Report) -> list[list[str]]:
    rows = []
    origin = report.result.started_wall
    for summary in report.phases:
        span = f"{summary.phase.start - origin:.1f}–{summary.phase.end - origin:.1f} s"
        for mode, m in summary.modes.items():
            p = percentiles_ms(m.latency)
            fresh = stale = "–"
            if m.staleness is not None and m.staleness.reads:
                fresh = percent(m.staleness.fresh_fraction)
                stale = ms(m.staleness.to_json()["stale_ms"]["p99"])  # type: ignore[index]
            rows.append(
                [summary.phase.name, span, mode, f"{m.answered:,}/{m.attempted:,}",
                 percent(m.availability), ms(p["p50"]) if m.answered else "–",
                 ms(p["p99"]) if m.answered else "–", fresh, stale]
            )  # fmt: skip
    return rows


PHASE_HEADER = ["phase", "when", "mode", "answered", "availability", "p50 ms", "p99 ms", "fresh",
                "stale p99 ms"]  # fmt: skip


# ---- console ---------------------------------------------------------------------------


def verdicts(report: Report) -> list[tuple[str, str, bool]]:
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


def _table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


CONSOLE_LATENCY = ("mode", "p50", "p90", "p99", "p99.9", "max", "req/s", "errors", "late starts")
CONSOLE_STALENESS = ("mode", "reads", "fresh", "stale p50 ms", "stale p99 ms",
                     "max versions behind", "over bound")  # fmt: skip
CONSOLE_WORKERS = ("worker", "operations", "lag p50 ms", "lag p99 ms", "late starts", "dropped",
                   "CPU ms/op", "offset ± uncertainty ms")  # fmt: skip
CONSOLE_PHASES = ("phase", "mode", "answered", "availability", "p50 ms", "p99 ms", "fresh",
                  "stale p99 ms")  # fmt: skip
"""The columns a terminal has room for (the HTML page shows them all)."""


def _columns(
    header: list[str], rows: list[list[str]], keep: tuple[str, ...]
) -> tuple[list[str], list[list[str]]]:
    indexes = [header.index(name) for name in keep]
    return [header[i] for i in indexes], [[row[i] for i in indexes] for row in rows]


def phase_table(report: Report) -> Table:
    """The phase table without the time span (the terminal's width), each phase named once."""
    header, rows = _columns(PHASE_HEADER, phase_rows(report), CONSOLE_PHASES)
    names = [row[0] for row in rows]
    for i in range(1, len(rows)):
        if names[i] == names[i - 1]:
            rows[i][0] = ""
    return _table("phases: availability, latency and staleness per mode", header, rows)


def print_console(report: Report, console: Console) -> None:
    result = report.result
    title = f"caplab load {result.run_id}: latency from intended start (ms)"
    console.print(_table(title, *_columns(LATENCY_HEADER, latency_rows(report), CONSOLE_LATENCY)))
    staleness = _columns(STALENESS_HEADER, staleness_rows(report), CONSOLE_STALENESS)
    console.print(_table("staleness of balance reads", *staleness))
    if len(report.workers) > 1:
        workers = _columns(WORKER_HEADER, worker_rows(report), CONSOLE_WORKERS)
        console.print(_table(f"{len(report.workers)} workers", *workers))
    if report.phases:
        console.print(phase_table(report))
    dropped = sum(result.dropped.values())
    if dropped:
        console.print(f"[yellow]{dropped:,} arrivals dropped (more than --max-in-flight)[/]")
    lag = percentiles_ms(report.lag)
    console.print(
        f"scheduling lag: p50 {lag['p50']:.3f} ms, p99 {lag['p99']:.3f} ms, max {lag['max']:.3f} ms"
    )
    for note in result.notes:
        console.print(f"[dim]note: {note}[/]")
    for check, outcome, passed in verdicts(report):
        mark = "[green]✓[/]" if passed else "[red]✗[/]"
        console.print(f"{mark} {check}: {outcome}", highlight=False)
    for line in report.serializability.lines():
        console.print(line, highlight=False, markup=False)


# ---- plots -----------------------------------------------------------------------------


MODE_COLOURS: dict[str, str] = {kind: f"C{i}" for i, kind in enumerate(OPERATIONS)}
"""One colour per mode across every chart."""
SHADED_PHASES = ("partition",)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def tradeoff_plot(report: Report) -> str:
    """The headline: per read mode, latency (p50 dot, p99 triangle, joined) against freshness
    (left: fraction of reads that were fresh; right: p99 of how far behind stale reads were).
    Strong reads sit at full freshness; the stale modes buy latency and availability with it."""
    figure = _figure(10, 4.2)
    left, right = figure.subplots(1, 2, sharey=True)
    for mode in READ_MODES:
        stats, staleness = report.stats.get(mode), report.staleness.get(mode)
        if stats is None or staleness is None or stats.latency.get_total_count() == 0:
            continue
        p = percentiles_ms(stats.latency)
        stale_p99: float = staleness.to_json()["stale_ms"]["p99"]  # type: ignore[index]
        colour = MODE_COLOURS[mode]
        for axes, x in ((left, staleness.fresh_fraction), (right, stale_p99)):
            axes.plot([x, x], [p["p50"], p["p99"]], color=colour, linewidth=2)
            axes.plot([x], [p["p50"]], "o", color=colour, label=f"{mode} p50")
            axes.plot([x], [p["p99"]], "^", color=colour, label=f"{mode} p99")
            axes.annotate(mode, (x, p["p99"]), textcoords="offset points", xytext=(5, 4))
    left.set_xlabel("fraction of reads that were fresh")
    left.set_xlim(-0.05, 1.1)
    left.set_ylabel("latency from intended start (ms)")
    left.set_yscale("log")
    right.set_xlabel("p99 of how far behind stale reads were (ms)")
    right.set_xscale("symlog", linthresh=1)
    right.set_xlim(left=-0.5)
    for axes in (left, right):
        axes.grid(True, which="both", alpha=0.3)
    left.legend(fontsize="small", ncol=2)
    figure.suptitle("What each read mode costs (latency) and what it gives up (freshness)")
    return _png(figure)


def availability_plot(report: Report) -> str:
    """Fraction of the operations scheduled in each interval that were answered, per mode;
    partitions shaded."""
    line = timeline(report.result)
    figure = _figure(10, 3.8)
    axes = figure.subplots()
    origin = report.result.started_wall
    for summary in report.phases:
        start, end = summary.phase.start - origin, summary.phase.end - origin
        if summary.phase.name in SHADED_PHASES:
            axes.axvspan(start, end, color="red", alpha=0.12)
        axes.axvline(start, color="grey", linewidth=0.8, linestyle=":")
        axes.text(start, 1.12, f" {summary.phase.name}", fontsize="small", va="top")
    for mode, values in line.availability.items():
        xs = [t + line.bucket / 2 for t in line.starts]
        axes.plot(xs, values, label=mode, color=MODE_COLOURS[mode], marker=".", linewidth=1)
    axes.set_ylim(-0.05, 1.15)
    axes.set_xlim(0, report.result.config.duration)
    axes.set_xlabel(f"seconds since the start (buckets of {line.bucket:.2g} s)")
    axes.set_ylabel("fraction answered")
    axes.set_title("Availability over time per mode")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", ncol=4, loc="lower left")
    return _png(figure)


def latency_spectrum_plot(report: Report) -> str:
    """Latency by percentile, one line per mode (x: 1/(1−p) on a log axis, as HdrHistogram
    plots do, so the tail gets the room)."""
    figure = _figure(8, 4.5)
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
    figure = _figure(10, 4)
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
    figure = _figure(8, 4)
    axes = figure.subplots()
    points = [
        (b.high_ms if not math.isinf(b.high_ms) else b.low_ms * 2, b.probability, b.samples)
        for b in visibility.bins
        if b.samples
    ]
    if points:
        axes.plot([x for x, _, _ in points], [y for _, y, _ in points], marker="o")
        for x, y, n in points:
            axes.annotate(f"{n}", (x, y), textcoords="offset points", xytext=(0, -12),
                          fontsize="x-small", ha="center")  # fmt: skip
    axes.set_xscale("log")
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("time since commit (ms, upper edge of bin; samples under each point)")
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


def _img(alt: str, png: str) -> str:
    return f"<img alt='{alt}' src='data:image/png;base64,{png}'>"


def render_html(report: Report) -> str:
    result = report.result
    verdict_items = "".join(
        f"<li class={'ok' if passed else 'bad'}><b>{html.escape(check)}</b>: "
        f"{html.escape(outcome)}</li>"
        for check, outcome, passed in verdicts(report)
    )
    anomalies = report.serializability.lines()
    counterexamples = f"<pre>{html.escape(chr(10).join(anomalies))}</pre>" if anomalies else ""
    lag = percentiles_ms(report.lag)
    sections = [
        ("What each read mode costs and gives up", _img("trade-off", tradeoff_plot(report))),
        ("Availability over time", _img("availability", availability_plot(report))),
    ]
    if report.phases:
        sections.append(("Phases", _html_table(PHASE_HEADER, phase_rows(report))))
    sections += [
        ("Latency per mode (ms)", _html_table(LATENCY_HEADER, latency_rows(report))),
        ("Staleness per read mode", _html_table(STALENESS_HEADER, staleness_rows(report))),
        (f"Workers ({len(report.workers)})", _html_table(WORKER_HEADER, worker_rows(report))),
        ("Latency spectrum", _img("latency", latency_spectrum_plot(report))),
        ("Staleness", _img("staleness", staleness_plot(report))),
    ]
    if report.visibility is not None:
        sections.append(("t-visibility", _img("t-visibility", visibility_plot(report.visibility))))
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    config = html.escape(json.dumps(result.config.__dict__, sort_keys=True))
    workers = len(report.workers)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>caplab load {html.escape(result.run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 80em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
li.ok::marker {{ content: "✓ "; color: green; }} li.bad::marker {{ content: "✗ "; color: red; }}
code, pre {{ background: #f6f6f6; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>caplab load — run {html.escape(result.run_id)}</h1>
<p>Ledger <code>{html.escape(result.endpoints.ledger_url)}</code>; {len(result.records):,}
operations from {workers} generator{"s" if workers > 1 else ""} over {result.config.duration:g} s
({result.config.warmup:g} s warm-up excluded from statistics). Latency is measured from each
operation's <em>intended</em> start (open loop, no coordinated omission); service time from its
actual send. Scheduling lag p99 {lag["p99"]:.3f} ms.</p>
<p><small>Configuration: <code>{config}</code></small></p>
<ul>{notes}</ul>
<h2>Verdicts</h2><ul>{verdict_items}</ul>{counterexamples}
{body}
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
    history = dump_history(ledger_history(report.checked or report.result), model="ledger")
    paths["history"].write_text(json.dumps(history))
    result = report.result
    records = [r.to_json() for r in [*result.setup, *result.records]]
    paths["records"].write_text(json.dumps(records))
    return paths
