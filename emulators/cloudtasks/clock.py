"""Time as the emulator sees it: the system clock, or a fake one that tests move by hand.

Every schedule, token bucket, tombstone and attempt timestamp reads :meth:`Clock.now`, so a
test that swaps in :class:`FakeClock` sees the documented backoff sequence, tombstone expiry
and rate-limit spacing exactly, without waiting for them.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def real_delay(self, seconds: float) -> float | None:
        """How long the scheduler should really wait for ``seconds`` of this clock to pass;
        None means "until woken" (a fake clock only moves when told to)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def real_delay(self, seconds: float) -> float | None:
        return max(0.0, seconds)


class FakeClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it; starts at the
    current whole second, so absolute timestamps stay plausible and differences between the
    microsecond-truncated times Cloud Tasks stores come out exact."""

    def __init__(self, start: float | None = None) -> None:
        self._now = float(int(time.time())) if start is None else start

    def now(self) -> float:
        return self._now

    def real_delay(self, seconds: float) -> float | None:
        return None

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds

    def set(self, moment: float) -> None:
        """Move to ``moment`` if it is later than now (never backwards)."""
        self._now = max(self._now, moment)
