"""``caplab lab partition`` from nothing: it starts its own Spanner emulator, chaos links and
two ledgers on free ports, runs baseline / partition / healed, stops everything, and its
report shows the three phases: strong reads and transfers fail closed while the leader link
is cut, stale and cached reads keep answering, everything answers after the heal, and the
checkers pass over all of it."""

from __future__ import annotations

import json
from pathlib import Path

from caplab.cli import main


def test_partition_scenario_reports_three_phases_cp_and_ap(tmp_path: Path) -> None:
    out = tmp_path / "partition"
    assert main(["lab", "partition", "--duration", "6", "--rate", "30", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    phases = {phase["name"]: phase for phase in report["phases"]}
    assert list(phases) == ["baseline", "partition", "healed"]
    baseline, partition, healed = phases["baseline"], phases["partition"], phases["healed"]
    # (Strong reads scheduled just before the cut may still be waiting when it comes: the
    # scenario's own expectations, checked by its exit status, are about what ran inside it.)
    strong = [phase["modes"]["strong"]["availability"] for phase in phases.values()]
    assert strong[1] < min(strong[0], strong[2])
    for mode in ("exact", "bounded", "cached"):
        assert [phase["modes"][mode]["availability"] for phase in phases.values()] == [1.0] * 3
        assert partition["modes"][mode]["staleness"]["reads"] > 0, mode
    for mode in ("transfer", "strong"):
        assert healed["modes"][mode]["answered"] > 0, mode
    assert baseline["modes"]["strong"]["answered"] > 0
    assert report["strict_serializability"]["verdict"] == "strictly serializable"
    assert report["bank_invariant"]["holds"]
    page = (out / "report.html").read_text()
    assert "alt='availability'" in page
    assert "<h2>Phases</h2>" in page
