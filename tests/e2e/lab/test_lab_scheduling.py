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

import pytest
from rich.console import Console

from caplab.cli import main
from caplab.core.errors import CaplabError
from loadtest.auth import IdTokenAuth
from loadtest.config import LoadConfig
from loadtest.runner import Endpoints, run_load
from loadtest.stats import kind_stats

StandIn = Callable[..., AbstractContextManager[str]]

STALL_AT, STALL_FOR = 0.5, 0.5


def quiet() -> Console:
    return Console(file=io.StringIO())


def test_stall_is_charged_to_latency_and_counted_as_late_starts(standin: StandIn) -> None:
    """During a 0.5 s server pause the schedule keeps going; once the 4 connections are held,
    every later operation in the pause starts late and its latency runs from its intended
    start, so it includes the wait (no coordinated omission)."""
    config = LoadConfig(
        rate=200, duration=2.0, warmup=0.0, mix={"strong": 1}, accounts=2, connections=4
    )
    with standin("--stall-at", str(STALL_AT), "--stall-for", str(STALL_FOR)) as url:
        result = asyncio.run(run_load(config, Endpoints(url), quiet()))
    records = result.records
    assert len(records) == 400  # nothing dropped or skipped: the schedule never waited
    assert all(r.outcome == "ok" for r in records)
    window_start = records[0].invoked + STALL_AT
    window_end = window_start + STALL_FOR
    inside = [r for r in records if window_start + 0.1 <= r.intended <= window_end - 0.1]
    assert len(inside) >= 60
    for record in inside:
        assert record.returned >= window_end - 0.05
        assert record.latency >= window_end - 0.05 - record.intended
    late_inside = [r for r in inside if r.lag > config.late_threshold]
    assert len(late_inside) >= len(inside) - config.connections
    stats = kind_stats(result)["strong"]
    assert stats.late >= len(late_inside)
    assert stats.latency.get_max_value() >= 400_000  # µs: the stall is in the histogram
    late_service = max(r.service_time for r in late_inside)
    assert min(r.latency for r in late_inside) > 0
    assert max(r.latency for r in late_inside) > late_service


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
    writes HTML with three plots, JSON with every mode, and a history ``caplab check``
    accepts."""
    out = tmp_path / "report"
    with standin() as url:
        status = main(
            ["load", "--ledger-url", url, "--activity-url", url, "--duration", "2",
             "--warmup", "0.5", "--rate", "100", "--accounts", "4", "--staleness", "200ms",
             "--out", str(out)]
        )  # fmt: skip
    assert status == 0
    page = (out / "report.html").read_text()
    assert page.count("<img") == 3
    assert "strictly serializable" in page
    report = json.loads((out / "report.json").read_text())
    assert set(report["modes"]) == {"transfer", "strong", "exact", "bounded", "cached",
                                    "snapshot", "activity"}  # fmt: skip
    assert report["strict_serializability"]["verdict"] == "strictly serializable"
    assert report["bank_invariant"]["holds"] is True
    assert report["t_visibility"]["samples"] > 0
    assert main(["check", str(out / "history.json")]) == 0
