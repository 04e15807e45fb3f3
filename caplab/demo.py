"""``make demo``: the main job on the local stack, start to finish.

Brings the emulators up (and bootstraps the topology), prints the status table and the
``env`` lines, and always stops what it started — even when a step fails or is interrupted.
"""

from __future__ import annotations

import sys

from rich.console import Console

from caplab.cli import quiet_emulator_notices
from caplab.errors import CaplabError
from emulators import manager
from emulators.cli import print_status


def main() -> int:
    quiet_emulator_notices()
    console = Console()
    config = manager.StackConfig.from_environ()
    result = manager.UpResult()
    try:
        result = manager.up(config)
        for name, seconds in result.ready_seconds.items():
            console.print(f"{name}: ready in {seconds:.2f}s")
        print_status(config, console)
        console.rule("environment for clients")
        console.print("\n".join(manager.env_lines(config)), highlight=False, soft_wrap=True)
    except CaplabError as error:
        console.print(f"[red]caplab: error: {error}[/]")
        return 1
    finally:
        # Stop only what this demo started: a stack the user brought up stays up.
        stopped = manager.down(config, only=result.started)
        console.print(f"stopped: {', '.join(stopped) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
