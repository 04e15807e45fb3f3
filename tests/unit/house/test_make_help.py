"""`make help` lists every target the Makefile declares, each with one line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_make_help_lists_every_phony_target_once() -> None:
    makefile = (ROOT / "Makefile").read_text()
    declared = set(re.search(r"^\.PHONY:(.*?)(?<!\\)\n", makefile, re.M | re.S)[1].split()) - {"\\"}
    result = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert sorted(listed) == sorted(declared)
    assert all(len(line.split(maxsplit=1)) == 2 for line in result.stdout.splitlines())
