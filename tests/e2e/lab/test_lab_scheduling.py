"""The open-loop runner against a stand-in ledger process: it keeps its schedule while the
server stalls, counts the late starts and charges the stall to latency; it authenticates with
ID tokens from an injected source; ``caplab load`` writes a complete report."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from caplab.cli import main
from caplab.core.errors import CaplabError
from loadtest.auth import IdTokenAuth
from loadtest.config import LoadConfig
from loadtest.runner import Endpoints, run_load
from loadtest.stats import kind_stats
from tests.e2e.lab.lab_records import visible_samples

StandIn = Callable[..., AbstractContextManager[str]]

STALL_AT, STALL_FOR = 0.5, 0.5


def quiet() -> Console:
    return Console(file=io.StringIO())


def test_stall_is_charged_to_latency_and_counted_as_late_starts(standin: StandIn) -> None:
    """During a 0.5 s server pause the schedule keeps going; every operation intended inside
    the pause has the rest of the pause in its latency (measured from its intended start: no
    coordinated omission), and all but the few that found a free connection start late.

    The stand-in reports the pause it made, [start, end) on this host's monotonic clock (the
    records' clock), so each check follows from causality instead of a tolerance: a request
    sent at or after ``start`` reaches the server no earlier, is held if it arrives before
    ``end``, and so is never answered before ``end``; each operation started before ``end``
    keeps its connection past ``end``, so at most ``connections`` of those intended inside
    the pause can start before it ends."""
    config = LoadConfig(
        rate=200, duration=2.0, warmup=0.0, mix={"strong": 1}, accounts=2, connections=4
    )
    with standin("--stall-at", str(STALL_AT), "--stall-for", str(STALL_FOR)) as url:
        result = asyncio.run(run_load(config, Endpoints(url), quiet()))
        pause = httpx.get(f"{url}/internal/stall").json()
    start, end = pause["start"], pause["end"]
    records = result.records
    assert len(records) == 400  # nothing dropped or skipped: the schedule never waited
    assert all(r.outcome == "ok" for r in records)
    inside = [r for r in records if start <= r.intended < end]
    assert len(inside) > config.connections, "too few operations intended inside the pause"
    assert 1 <= pause["held"] <= config.connections, "the server held no request"
    for record in inside:
        assert record.returned >= end
        assert record.latency >= end - record.intended
    late = [r for r in inside if r.invoked >= end]
    assert len(late) >= len(inside) - config.connections
    for record in late:
        # what a closed-loop tool (timing from the actual send) would not have seen
        assert record.latency - record.service_time >= end - record.intended
    stats = kind_stats(result)["strong"]
    assert stats.late >= sum(end - r.intended > config.late_threshold for r in late)
    longest = max(end - r.intended for r in inside)
    assert stats.latency.get_max_value() >= int(longest * 1e6)  # µs: the pause is recorded


def test_requests_carry_id_tokens_for_the_service_audience(standin: StandIn) -> None:
    """With an ID-token source every request is authorised (audience = the service URL);
    without it the stand-in refuses and the run stops with a clear error."""
    audiences: list[str] = []

    def source(audience: str) -> str:
        audiences.append(audience)
        return "token-for-test"

    config = LoadConfig(rate=50, duration=1.0, warmup=0.0, mix={"strong": 1, "transfer": 1},
                        accounts=2)  # fmt: skip
    with standin("--token", "token-for-test") as url:
        auth = IdTokenAuth(source)
        result = asyncio.run(run_load(config, Endpoints(url, auth=auth), quiet()))
        assert {r.outcome for r in result.records} <= {"ok", "rejected"}
        assert audiences == [url]  # fetched once, reused
        with pytest.raises(CaplabError, match="401"):
            asyncio.run(run_load(config, Endpoints(url), quiet()))


def test_load_command_writes_report_and_a_checkable_history(
    standin: StandIn, tmp_path: Path
) -> None:
    """``caplab load`` prints the table, passes every check against a correct ledger, and
    writes HTML with its five plots (the read-mode trade-off and availability first), JSON
    with every mode, a t-visibility curve whose samples are exactly the activity reads' in
    records.json (each visible sample a shown transfer that committed before the read), and
    a history ``caplab check`` accepts."""
    out = tmp_path / "report"
    with standin() as url:
        status = main(
            ["load", "--ledger-url", url, "--activity-url", url, "--duration", "2",
             "--warmup", "0.5", "--rate", "100", "--accounts", "4", "--staleness", "200ms",
             "--out", str(out)]
        )  # fmt: skip
    assert status == 0
    page = (out / "report.html").read_text()
    alts = ["trade-off", "availability", "latency", "staleness", "t-visibility"]
    assert [page.index(f"<img alt='{alt}'") for alt in alts] == sorted(
        page.index(f"<img alt='{alt}'") for alt in alts
    )
    assert page.count("<img") == 5
    assert "strictly serializable" in page
    report = json.loads((out / "report.json").read_text())
    assert set(report["modes"]) == {"transfer", "strong", "exact", "bounded", "cached",
                                    "snapshot", "activity"}  # fmt: skip
    assert report["strict_serializability"]["verdict"] == "strictly serializable"
    assert report["bank_invariant"]["holds"] is True
    records = json.loads((out / "records.json").read_text())
    activity_reads = [r for r in records if r["kind"] == "activity" and r["outcome"] == "ok"]
    visibility = report["t_visibility"]
    assert visibility["reads"] == len(activity_reads)
    curve = visibility["curve"]
    assert sum(b["samples"] for b in curve) == visibility["samples"]
    visible = visible_samples(records)
    assert visible, "no activity read showed a transfer committed before it"
    assert sum(round((b["p_visible"] or 0) * b["samples"]) for b in curve) == visible
    assert main(["check", str(out / "history.json")]) == 0
