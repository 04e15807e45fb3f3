"""``caplab lab partition`` from nothing: it starts its own Spanner emulator, chaos links and
two ledgers on free ports, runs baseline / partition / healed, stops everything, and its
report shows the three phases: strong reads and transfers fail closed while the leader link
is cut, stale and cached reads keep answering, everything answers after the heal, and the
checkers pass over all of it."""

from __future__ import annotations

import json
from pathlib import Path

from caplab.cli import main
from caplab.local.partition import MIX, STAY_AVAILABLE
from tests.e2e.lab.lab_records import versions_observed

ANSWERED = ("ok", "rejected")


def test_partition_scenario_reports_three_phases_cp_and_ap(tmp_path: Path) -> None:
    """The three phases split the measured run between them: per mode, their attempted and
    answered counts add up to exactly what records.json holds. Strong reads are less
    available during the cut than before or after it; stale and cached reads answer every
    time in every phase, each checked for staleness, and no read (stale or not) returns a
    version no transfer had yet been sent to write, nor a strong read one older than a
    transfer the client had already seen commit."""
    out = tmp_path / "partition"
    assert main(["lab", "partition", "--duration", "6", "--rate", "30", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    records = json.loads((out / "records.json").read_text())
    phases = {phase["name"]: phase for phase in report["phases"]}
    assert list(phases) == ["baseline", "partition", "healed"]
    partition = phases["partition"]

    measured = [r for r in records if r["kind"] != "create" and not r["warmup"]]
    for mode in MIX:
        mine = [r for r in measured if r["kind"] == mode]
        in_phases = [phase["modes"].get(mode) for phase in phases.values()]
        assert sum(m["attempted"] for m in in_phases if m) == len(mine), mode
        answered = sum(r["outcome"] in ANSWERED for r in mine)
        assert sum(m["answered"] for m in in_phases if m) == answered, mode

    # (Strong reads scheduled just before the cut may still be waiting when it comes: the
    # scenario's own expectations, checked by its exit status, are about what ran inside it.)
    strong = [phase["modes"]["strong"]["availability"] for phase in phases.values()]
    assert strong[1] < min(strong[0], strong[2])
    for mode in STAY_AVAILABLE:
        assert [phase["modes"][mode]["availability"] for phase in phases.values()] == [1.0] * 3
        cut = partition["modes"][mode]
        assert cut["staleness"]["reads"] == cut["answered"], mode

    reads = [
        r for r in records if r["kind"] in ("strong", *STAY_AVAILABLE) and r["outcome"] == "ok"
    ]
    for read in reads:
        lowest, highest = versions_observed(records, read)
        assert read["version"] <= highest, read["seq"]
        if read["kind"] == "strong":
            assert lowest <= read["version"], read["seq"]
    assert report["strict_serializability"]["verdict"] == "strictly serializable"
    assert report["bank_invariant"]["holds"]
    page = (out / "report.html").read_text()
    assert "alt='availability'" in page
    assert "<h2>Phases</h2>" in page
