"""The service image's command line and environment, read from the Dockerfile itself."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in logical]


def command(path: Path = DOCKERFILE) -> list[str]:
    """ENTRYPOINT + CMD (both must use the JSON form), as the container runs them."""
    found = dict(instructions(path))
    return json.loads(found["ENTRYPOINT"]) + json.loads(found["CMD"])


def environment(path: Path = DOCKERFILE) -> dict[str, str]:
    """Every ``ENV key=value`` the image sets."""
    values: dict[str, str] = {}
    for instruction, arguments in instructions(path):
        if instruction == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                values[key] = value
    return values
