"""Stopping cleanly on SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> Handler:
    """Treat SIGTERM like Ctrl-C, so ``finally`` blocks stop what this process started (the
    default action would end the process at once and leave emulators and services behind).
    Returns the previous handler."""
    return signal.signal(signal.SIGTERM, _interrupt)
