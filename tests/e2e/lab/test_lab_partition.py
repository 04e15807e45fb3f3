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
    for mode in ("strong", "exact", "bounded", "cached"):
        assert baseline["modes"][mode]["availability"] == 1.0, mode
        assert healed["modes"][mode]["answered"] > 0, mode
    assert partition["modes"]["strong"]["availability"] < 1.0
    for mode in ("exact", "bounded", "cached"):
        assert partition["modes"][mode]["availability"] == 1.0, mode
        assert partition["modes"][mode]["staleness"]["reads"] > 0, mode
    assert report["linearizability"]["verdict"] == "linearizable"
    assert report["bank_invariant"]["holds"]
    page = (out / "report.html").read_text()
    assert "alt='availability'" in page
    assert "<h2>Phases</h2>" in page
