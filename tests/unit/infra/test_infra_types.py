"""The Pulumi program type-checks against pulumi-gcp's types, and the check has teeth.

Mocks accept a misspelled key in a dict literal and a string where a number belongs; pyright
refuses both (pulumi-gcp types its ``...Args`` classes and their ``...ArgsDict`` twins). One
pyright run covers infra/ and a deliberately wrong program, so the test proves both that
infra/ is clean and that such mistakes are caught.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

WRONG_PROGRAM = """\
from __future__ import annotations

import pulumi_gcp as gcp

gcp.pubsub.Subscription("a", gcp.pubsub.SubscriptionArgs(topic="t", ack_deadline_second=30))
gcp.pubsub.Subscription("b", gcp.pubsub.SubscriptionArgs(topic="t", ack_deadline_seconds="30"))
gcp.pubsub.Subscription("c", topic="t", push_config={"push_endpont": "https://example.com"})
"""


def test_infra_is_clean_and_typing_mistakes_are_caught(tmp_path: Path) -> None:
    """pyright reports nothing in infra/ and exactly the three mistakes of the wrong
    program: a misspelled keyword, a wrong value type, a misspelled dict-literal key."""
    wrong = tmp_path / "wrong_program.py"
    wrong.write_text(WRONG_PROGRAM)
    pyright = Path(sys.executable).with_name("pyright")
    result = subprocess.run(
        [str(pyright), "--outputjson", "infra", str(wrong)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    report = json.loads(result.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    in_infra = [d for d in errors if Path(d["file"]) != wrong]
    assert in_infra == [], in_infra
    assert sorted(d["range"]["start"]["line"] for d in errors) == [4, 5, 6]
    assert "ack_deadline_second" in errors[0]["message"]
