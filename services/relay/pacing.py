"""How long the relay waits between two attempts: back-off while a dependency fails, and a
poll interval that stretches while the Outbox is idle.

- :class:`Backoff`: capped exponential back-off with full jitter, drawn from
  ``google.api_core.retry.exponential_sleep_generator`` (each delay uniform in
  ``[0, min(initial x 2^n, maximum)]``); the first success resets it. ``as_dict`` is what
  ``/stats`` shows.
- :class:`PollInterval`: ``busy`` after a poll that found rows, doubled after each empty poll
  up to ``idle``. Under load every poll finds rows, so the relay polls at the busy interval
  (latency); idle, it settles at one poll per ``idle`` (cost). The first event after a quiet
  spell waits up to ``idle``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from google.api_core.retry import exponential_sleep_generator


class Backoff:
    def __init__(self, initial: float, maximum: float, multiplier: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self._delays: Iterator[float] | None = None
        self._lock = threading.Lock()
        self.current = 0.0
        self.failures = 0
        self.last_error: str | None = None

    def failed(self, error: BaseException) -> float:
        """Record a failure; the seconds to wait before the next attempt."""
        with self._lock:
            if self._delays is None:
                self._delays = exponential_sleep_generator(
                    self.initial, self.maximum, self.multiplier
                )
            self.current = next(self._delays)
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"[:300]
            return self.current

    def succeeded(self) -> None:
        with self._lock:
            self._delays = None
            self.current = 0.0
            self.failures = 0

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "current_s": round(self.current, 3),
                "consecutive_failures": self.failures,
                "max_s": self.maximum,
                "last_error": self.last_error,
            }


class PollInterval:
    def __init__(self, busy: float, idle: float) -> None:
        self.busy = busy
        self.idle = max(idle, busy)
        self.current = busy

    def after(self, found: int) -> float:
        """The wait before the next poll, given the rows the last poll found."""
        self.current = self.busy if found else min(self.current * 2, self.idle)
        return self.current
