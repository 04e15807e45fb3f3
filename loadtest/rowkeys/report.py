"""The row-key lab's outputs: tables in the terminal, ``rowkeys.json``, and ``rowkeys.html``
(Key-Visualizer-style heatmaps, the partitioning plots, inline SVG)."""

from __future__ import annotations

import html
import io
import json
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from rich import box
from rich.console import Console
from rich.table import Table

from loadtest.rowkeys import tablets
from loadtest.rowkeys.lab import MODEL, DesignResult, LabResult
from loadtest.rowkeys.measure import QueryStats
from loadtest.stats import histogram_of, percentiles_ms

QUERY_LABELS = {"feed": "feed page", "time_range": "time range", "point": "point lookup"}


def _query_json(stats: QueryStats) -> dict[str, Any]:
    latency = percentiles_ms(histogram_of(stats.seconds))
    return {
        "samples": len(stats.rows_read),
        "ranges_per_request": stats.ranges,
        "full_table_scan": stats.full_table,
        "rows_read_per_query": round(stats.rows_read_per_query, 2),
        "rows_read_per_useful_row": round(stats.rows_read_per_useful_row, 3),
        "wrong_answers": stats.wrong,
        "latency_ms": {k: latency[k] for k in ("p50", "p99", "max")},
    }


def _design_json(result: DesignResult) -> dict[str, Any]:
    queries = result.queries
    share = result.replay.max_tablet_write_share
    return {
        "name": result.design.name,
        "pattern": result.design.pattern,
        "key_example": result.key_example.decode(),
        "in_use": result.design.in_use,
        "max_tablet_write_share": round(share, 4),
        "nodes_needed": result.nodes_needed,
        "write_ceiling_rows_per_s": (
            None if math.isinf(result.write_ceiling) else round(result.write_ceiling)
        ),
        "tablets_at_end": len(result.replay.boundaries) + 1,
        "rows_read_per_feed_query": round(queries["feed"].rows_read_per_query, 2),
        "rows_read_per_time_range_query": round(queries["time_range"].rows_read_per_query, 2),
        "rows_read_per_point_lookup": round(queries["point"].rows_read_per_query, 2),
        "queries": {kind: _query_json(stats) for kind, stats in queries.items()},
        "window_write_shares": [round(s, 4) for s in result.replay.shares],
    }


def to_json(result: LabResult) -> dict[str, Any]:
    config = result.config
    model = config.model
    return {
        "run_id": result.run_id,
        "started": result.started.isoformat(),
        "bigtable": result.target.describe(),
        "tablet_mode": result.target.tablet_mode,
        "tablet_mode_note": (
            "tablets modelled: the emulator does not show tablets"
            if result.target.tablet_mode == MODEL
            else "tablet boundaries read with SampleRowKeys from the instance, layout fixed"
        ),
        "workload": {
            "transfers": result.transfers,
            "rows": result.rows,
            "rate_per_s": config.workload.rate,
            "duration_s": config.workload.duration,
            "accounts": config.workload.accounts,
            "zipf": config.workload.zipf,
            "arrivals": config.workload.arrivals,
            "seed": config.workload.seed,
        },
        "tablet_model": {
            "window_s": model.window,
            "warmup_s": model.warmup,
            "tablets": model.tablets,
            "node_write_rows_per_s": config.node_write_rate,
            "node_write_rate_source": tablets.NODE_WRITE_RATE_SOURCE,
            "target_write_rows_per_s": config.target_rate,
        },
        "queries": {
            "samples": config.queries,
            "page": config.page,
            "time_range_s": config.range_seconds,
        },
        "designs": [_design_json(d) for d in result.designs],
        "partitioning": result.partitioning.to_json(),
        "wall_seconds": round(result.seconds, 2),
    }


# --- terminal ------------------------------------------------------------------------------


def _latency(stats: QueryStats) -> str:
    p = percentiles_ms(histogram_of(stats.seconds))
    return "/".join(f"{v:.0f}" if v >= 10 else f"{v:.1f}" for v in (p["p50"], p["p99"]))


def _rows_per_useful(stats: QueryStats) -> str:
    return f"{stats.rows_read_per_useful_row:.1f}" + ("*" if stats.full_table else "")


def print_console(result: LabResult, console: Console) -> None:
    config = result.config
    modelled = result.target.tablet_mode == MODEL
    keys = Table(title="Row-key designs", box=box.SIMPLE_HEAVY)
    keys.add_column("design")
    keys.add_column("row key")
    for d in result.designs:
        keys.add_row(d.design.name + (" (in use)" if d.design.in_use else ""), d.design.pattern)
    console.print(keys)
    writes = Table(
        title="Where the writes land: tablets "
        + ("modelled (the emulator shows none)" if modelled else "from SampleRowKeys"),
        box=box.SIMPLE_HEAVY,
        caption=(
            f"max tablet share: the busiest tablet's share of a {config.model.window:g}s "
            f"window's writes, mean after {config.model.warmup:g}s. Nodes for "
            f"{config.target_rate:,.0f} row writes/s at {config.node_write_rate:,.0f} per node "
            "(Bigtable SSD; none: the busiest tablet alone exceeds a node). Ceiling: the most "
            "any cluster takes."
        ),
    )
    writes.add_column("design")
    for column in ("max tablet share", "tablets", "nodes", "ceiling rows/s"):
        writes.add_column(column, justify="right")
    for d in result.designs:
        share = d.replay.max_tablet_write_share
        writes.add_row(
            d.design.name,
            f"{share:.1%}",
            str(len(d.replay.boundaries) + 1),
            "none" if d.nodes_needed is None else str(d.nodes_needed),
            f"{d.write_ceiling:,.0f}",
            style="bold red" if share > 0.5 else None,
        )
    console.print(writes)
    reads = Table(
        title=f"What the queries read: measured on {result.target.describe()}",
        box=box.SIMPLE_HEAVY,
        caption=(
            f"rows read per useful row (* = full-table scan) and latency p50/p99 in ms, "
            f"{config.queries} samples each; feed: {config.page}-row page, time range: "
            f"{config.range_seconds:g}s, point: one row by its key"
        ),
    )
    reads.add_column("design")
    for header in ("feed\nrows", "feed\nms", "range\nrows", "range\nms", "point\nms"):
        reads.add_column(header, justify="right")
    for d in result.designs:
        q = d.queries
        reads.add_row(
            d.design.name,
            _rows_per_useful(q["feed"]),
            _latency(q["feed"]),
            _rows_per_useful(q["time_range"]),
            _latency(q["time_range"]),
            _latency(q["point"]),
        )
    console.print(reads)
    p = result.partitioning
    schemes = Table(
        title=f"Partitioning {p.keys} keys, growing from {p.nodes_before} to "
        f"{p.nodes_before + 1} nodes",
        box=box.SIMPLE_HEAVY,
    )
    schemes.add_column("scheme")
    for column in ("keys moved", "max/mean after"):
        schemes.add_column(column, justify="right")
    rows = [
        ("range, re-cut into equal ranges", p.range),
        ("range, split the fullest", p.range_split_one),
        ("hash mod N", p.mod_n),
        (f"consistent hashing, {p.virtual_nodes} vnodes", p.consistent_hashing),
    ]
    for name, growth in rows:
        schemes.add_row(name, f"{growth.moved_fraction:.1%}", f"{growth.max_over_mean:.2f}")
    console.print(schemes)
    if result.wrong_answers:
        console.print(f"[bold red]{result.wrong_answers} query answers differed from the workload")


# --- HTML ----------------------------------------------------------------------------------


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def heatmaps_figure(result: LabResult) -> str:
    """Writes per key bucket (rows, lowest keys on top) per window (columns), one panel per
    design, on one colour scale."""
    panels = result.designs
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    peak = max((max(map(max, d.heatmap)) for d in panels), default=1) or 1
    image = None
    for index, d in enumerate(panels):
        ax = axes[index // columns][index % columns]
        image = ax.imshow(
            d.heatmap,
            aspect="auto",
            cmap="inferno",
            vmin=0,
            vmax=peak,
            interpolation="nearest",
            extent=(0, result.config.workload.duration, len(d.heatmap), 0),
        )
        ax.set_title(
            f"{d.design.name}\nmax tablet share {d.replay.max_tablet_write_share:.0%}", fontsize=9
        )
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    for ax in axes[:, 0]:
        ax.set_ylabel("key bucket (sorted keys)")
    for index in range(len(panels), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    if image is not None:
        figure.colorbar(image, ax=axes, label="writes per bucket per window")
    return _svg(figure)


def partitioning_figure(result: LabResult) -> str:
    p = result.partitioning
    vnodes = [v for v, _ in p.sweep]
    figure = Figure(figsize=(10, 3.8))
    moved, balance = figure.subplots(1, 2)
    moved.plot(vnodes, [g.moved_fraction for _, g in p.sweep], marker="o",
               label="consistent hashing")  # fmt: skip
    moved.axhline(p.mod_n.moved_fraction, color="C3", linestyle="--", label="hash mod N")
    moved.axhline(1 / (p.nodes_before + 1), color="grey", linestyle=":", label="1/(N+1)")
    moved.set_ylabel(f"fraction of keys moved, {p.nodes_before}→{p.nodes_before + 1} nodes")
    moved.set_ylim(0, 1)
    balance.plot(vnodes, [g.max_over_mean for _, g in p.sweep], marker="o",
                 label="consistent hashing")  # fmt: skip
    balance.axhline(p.mod_n.max_over_mean, color="C3", linestyle="--", label="hash mod N")
    balance.axhline(1.0, color="grey", linestyle=":", label="perfect")
    balance.set_ylabel(f"max / mean keys per node ({p.nodes_before + 1} nodes)")
    for ax in (moved, balance):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("virtual nodes per node")
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _svg(figure)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(result: LabResult) -> str:
    data = to_json(result)
    design_rows = []
    for d in data["designs"]:
        q = d["queries"]
        design_rows.append(
            [
                d["name"] + (" (in use)" if d["in_use"] else ""),
                d["key_example"],
                f"{d['max_tablet_write_share']:.1%}",
                "none suffices" if d["nodes_needed"] is None else str(d["nodes_needed"]),
                *(
                    f"{q[k]['rows_read_per_useful_row']:.1f} · "
                    f"{q[k]['latency_ms']['p50']:.1f}/{q[k]['latency_ms']['p99']:.1f} ms"
                    for k in QUERY_LABELS
                ),
            ]
        )
    designs = _table(
        ["design", "key example", "max tablet share", "nodes",
         *(f"{label}: rows read per useful row · p50/p99" for label in QUERY_LABELS.values())],
        design_rows,
    )  # fmt: skip
    p = data["partitioning"]
    schemes = _table(
        ["scheme", "keys moved", "max/mean after"],
        [
            [name, f"{p[key]['moved_fraction']:.1%}", f"{p[key]['max_over_mean']:.2f}"]
            for name, key in (
                ("range (re-cut)", "range"),
                ("range (split the fullest)", "range_split_one"),
                ("hash mod N", "mod_n"),
                (f"consistent hashing ({p['consistent_hashing']['virtual_nodes']} vnodes)",
                 "consistent_hashing"),
            )
        ],
    )  # fmt: skip
    model = data["tablet_model"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>caplab rowkeys {html.escape(result.run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 80em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
td:first-child, th:first-child, td:nth-child(2) {{ text-align: left; }}
code {{ background: #f6f6f6; }}
</style></head><body>
<h1>caplab rowkeys — run {html.escape(result.run_id)}</h1>
<p>{data["workload"]["transfers"]} transfers ({data["workload"]["rows"]} rows, two per
transfer) over {data["workload"]["duration_s"]:g} s, {data["workload"]["accounts"]} accounts
with Zipf skew {data["workload"]["zipf"]:g}, seed {data["workload"]["seed"]}; queries measured
on {html.escape(data["bigtable"])}.</p>
<p><b>Tablets: {html.escape(data["tablet_mode_note"])}.</b> Windows of {model["window_s"]:g} s,
the first {model["warmup_s"]:g} s excluded from the mean; {model["tablets"]} tablets' worth of
data. Nodes are sized for {model["target_write_rows_per_s"]:,.0f} row writes/s at
{model["node_write_rows_per_s"]:,.0f} per node ({html.escape(model["node_write_rate_source"])});
"none suffices" means the busiest tablet alone exceeds one node.</p>
<h2>Designs</h2>{designs}
<h2>Writes over the key space (Key Visualizer style)</h2>
<p>Each panel: the run's keys in sorted order, cut into equal-count buckets (top = lowest key),
against time; colour = writes. A bright line means one small key range took the writes.</p>
{heatmaps_figure(result)}
<h2>Partitioning schemes</h2>{schemes}
{partitioning_figure(result)}
</body></html>
"""


def write_report(result: LabResult, directory: Path) -> dict[str, Path]:
    """Write rowkeys.json and rowkeys.html into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "rowkeys.json", "html": directory / "rowkeys.html"}
    paths["json"].write_text(json.dumps(to_json(result), indent=2))
    paths["html"].write_text(render_html(result))
    return paths
