"""A checked history drawn as a self-contained HTML page (plain SVG, no script), in the manner
of Porcupine's visualizer: one panel per key (kv) or account (ledger), time flowing right, one
row per client, each operation a bar from its call to its return (open-ended when its outcome
is unknown) with its input and output as a tooltip.

Highlighted: the operations of the counterexample (kv) or of each anomaly (ledger) in red;
for a key left undecided by a timeout, the longest partial linearization found, numbered in
its order. Panels with something highlighted come first. A panel shows at most
:data:`MAX_BARS` operations (around the highlighted ones when there are more).
"""

from __future__ import annotations

import html
import json
from collections.abc import Hashable, Sequence
from pathlib import Path

from loadtest.linearizability.check import CheckResult
from loadtest.linearizability.history import Operation
from loadtest.linearizability.ledger import LedgerResult, iter_accounts
from loadtest.linearizability.search import Verdict

MAX_PANELS = 24
MAX_BARS = 400
_WIDTH, _ROW, _LEFT = 1100, 22, 90
_PER_BAR, _CHAR = 16, 6.6  # pixels of width per operation drawn, per label character


def _kv_marks(
    ops: Sequence[Operation], result: CheckResult
) -> tuple[set[int], dict[int, int], list[str]]:
    """Positions of counterexample operations, partial-linearization order, notes. Operations
    are matched by client, call time and input (shrinking may have cut an answer off)."""
    identity = {(op.client, op.call, _key(op.input)): i for i, op in enumerate(ops)}

    def position(op: Operation) -> int | None:
        return identity.get((op.client, op.call, _key(op.input)))

    bad = {
        p for e in result.counterexamples for op in e.operations if (p := position(op)) is not None
    }
    order: dict[int, int] = {}
    for key in result.keys:
        if key.verdict is Verdict.UNKNOWN:
            for n, op in enumerate(key.partial, start=1):
                found = position(op)
                if found is not None:
                    order[found] = n
    return bad, order, result.lines()


def _key(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _groups(ops: Sequence[Operation], ledger: bool) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = {}
    for i, op in enumerate(ops):
        keys = list(iter_accounts(op)) if ledger else [op.input.get("key")]
        for key in keys:
            groups.setdefault(key, []).append(i)
    return groups


def _window(members: list[int], ops: Sequence[Operation], marked: set[int]) -> list[int]:
    if len(members) <= MAX_BARS:
        return members
    focus = [i for i in members if i in marked]
    if not focus:
        return members[:MAX_BARS]
    middle = members.index(focus[0])
    start = max(0, min(middle - MAX_BARS // 2, len(members) - MAX_BARS))
    window = members[start : start + MAX_BARS]
    return sorted(set(window) | set(focus))


def _label(op: Operation) -> str:
    output = "?" if op.pending else _key(op.output)
    return f"{_key(op.input)} → {output}"


def _short(op: Operation, key: Hashable) -> str:
    """A bar's label; for the ledger, what the operation saw or did on the panel's account."""
    input = op.input
    kind = input.get("op", "?")
    if op.pending:
        return f"{kind} ?"
    output = op.output if isinstance(op.output, dict) else {}
    if kind == "create":
        return f"create {input.get('balance')}"
    if kind == "snapshot":
        output = output.get("accounts", {}).get(key) or {}
    if "version" in output:
        return f"{kind} → {output.get('balance')} @{output['version']}"
    if kind in ("read", "get"):
        return f"{kind} → {output.get('value')!r}"
    if kind in ("write", "put", "append"):
        return f"{kind} {input.get('value')}"
    if kind == "transfer":
        version = output.get("from_version" if key == input.get("from") else "to_version")
        done = " rejected" if "rejected" in output else f" @{version}" if version else ""
        return f"{input.get('from')}→{input.get('to')} {input.get('amount')}{done}"
    return str(kind)


def _panel(
    key: Hashable,
    title: str,
    members: list[int],
    ops: Sequence[Operation],
    bad: set[int],
    order: dict[int, int],
) -> str:
    shown = _window(members, ops, bad | set(order))
    end_known = [t for i in shown if (t := ops[i].return_time) is not None]
    start = min(ops[i].call for i in shown)
    finish = max([*end_known, *(ops[i].call for i in shown)])
    span = (finish - start) or 1.0
    finish_open = finish + span * 0.05
    clients: dict[object, int] = {}
    for i in shown:
        clients.setdefault(ops[i].client, len(clients))
    height = _ROW * (len(clients) + 1) + 10
    width = max(_WIDTH, _PER_BAR * len(shown))  # long histories scroll sideways

    def x(t: float) -> float:
        return _LEFT + (t - start) / (finish_open - start) * (width - _LEFT - 10)

    parts = [
        f"<div class='scroll'><svg width='{width}' height='{height}' role='img' "
        f"aria-label='{html.escape(title)}'>"
    ]
    for client, row in clients.items():
        y = 8 + row * _ROW
        parts.append(
            f"<text x='4' y='{y + 14}' class='client'>client {html.escape(str(client))}</text>"
        )
    for i in shown:
        op = ops[i]
        row = clients[op.client]
        y = 8 + row * _ROW
        x0 = x(op.call)
        x1 = x(op.return_time) if op.return_time is not None else x(finish_open)
        classes = ["op"]
        if op.pending:
            classes.append("pending")
        if i in bad:
            classes.append("bad")
        elif i in order:
            classes.append("linearized")
        tip = f"#{i} client {op.client} [{op.call:g}, {'…' if op.pending else op.return_time}]"
        tip += f"\n{_label(op)}"
        if i in order:
            tip += f"\nlinearized {order[i]}th"
        text = _short(op, key) + (f" ({order[i]})" if i in order else "")
        fits = int((x1 - x0 - 4) / _CHAR)  # labels never spill over the next bar
        label = text if len(text) <= fits else (text[: fits - 1] + "…" if fits >= 3 else "")
        parts.append(
            f"<g class='{' '.join(classes)}'><title>{html.escape(tip)}</title>"
            f"<rect x='{x0:.1f}' y='{y}' width='{max(2.0, x1 - x0):.1f}' height='{_ROW - 6}'/>"
            f"<text x='{x0 + 3:.1f}' y='{y + 12}'>{html.escape(label)}</text></g>"
        )
    parts.append("</svg></div>")
    hidden = len(members) - len(shown)
    note = f" <small>({hidden} more operations not drawn)</small>" if hidden > 0 else ""
    return f"<h2>{html.escape(title)}{note}</h2>" + "".join(parts)


def render(
    operations: Sequence[Operation], result: CheckResult | LedgerResult, title: str = "history"
) -> str:
    """The HTML page for ``operations`` checked as ``result``."""
    ops = list(operations)
    ledger = isinstance(result, LedgerResult)
    if isinstance(result, LedgerResult):
        bad = {i for anomaly in result.anomalies for i in anomaly.operations}
        order: dict[int, int] = {}
        notes = result.lines()
    else:
        bad, order, notes = _kv_marks(ops, result)
    groups = _groups(ops, ledger)
    ranked = sorted(
        groups.items(), key=lambda item: not any(i in bad or i in order for i in item[1])
    )
    noun = "account" if ledger else "key"
    panels = [
        _panel(key, f"{noun} {key}", members, ops, bad, order)
        for key, members in ranked[:MAX_PANELS]
    ]
    if len(ranked) > MAX_PANELS:
        panels.append(f"<p>{len(ranked) - MAX_PANELS} more {noun}s not drawn.</p>")
    headline = html.escape(f"{result.headline()}: {result.coverage()}")
    explanation = html.escape("\n".join(notes))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; }}
svg {{ background: #fafafa; border: 1px solid #ddd; display: block; }}
.scroll {{ overflow-x: auto; margin-bottom: 1em; }}
.op rect {{ fill: #cfe0f5; stroke: #4a78b5; }}
.op text, .client {{ font: 11px monospace; fill: #222; }}
.op.pending rect {{ fill: #eee; stroke: #999; stroke-dasharray: 4 2; }}
.op.linearized rect {{ fill: #d5efd5; stroke: #3c8d3c; }}
.op.bad rect {{ fill: #f8c9c9; stroke: #c22; stroke-width: 2; }}
pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p><b>{headline}</b></p>
<p>Bars run from call to return; a dashed bar's outcome is unknown. Red: the operations of
the counterexample or anomaly; green, numbered: the longest partial linearization of a key
left undecided.</p>
<pre>{explanation}</pre>
{"".join(panels)}
</body></html>
"""


def write_html(
    path: Path,
    operations: Sequence[Operation],
    result: CheckResult | LedgerResult,
    title: str = "history",
) -> None:
    path.write_text(render(operations, result, title))
