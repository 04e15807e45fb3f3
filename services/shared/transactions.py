"""The one way every service runs a Spanner read-write transaction.

``TransactionRunner.run(function, *args)`` calls ``function(transaction, *args)`` in a
read-write transaction, retried on abort by the client library within the runner's deadline.
Two settings, shared by every service (:class:`TransactionSettings`):

- ``CAPLAB_SPANNER_ABORT_RETRY_DELAY`` (default ``10ms``): the wait before retrying an aborted
  transaction when Spanner sends no retry hint. The client's own default (``2**attempt`` s)
  stalls badly against the emulator, which aborts every concurrent read-write transaction;
  production Spanner sends a hint, which wins.
- ``CAPLAB_SPANNER_MAX_CONCURRENT_TRANSACTIONS`` (default ``0``: no limit): read-write
  transactions one process runs at once. The emulator runs one at a time and aborts the older
  when another starts, so under open-loop load concurrent transactions abort each other into a
  collapse; a limit of 1 (``caplab emulators env`` sets it) turns those aborts into a short
  queue. Production Spanner locks rows instead and needs no limit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from google.api_core.exceptions import DeadlineExceeded
from starlette.config import Config

from caplab.core.durations import parse_duration

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database

T = TypeVar("T")


@dataclass(frozen=True)
class TransactionSettings:
    abort_retry_delay: timedelta = timedelta(milliseconds=10)
    max_concurrent: int = 0

    @classmethod
    def from_config(cls, config: Config) -> TransactionSettings:
        return cls(
            abort_retry_delay=config(
                "CAPLAB_SPANNER_ABORT_RETRY_DELAY", cast=parse_duration, default="10ms"
            ),
            max_concurrent=config(
                "CAPLAB_SPANNER_MAX_CONCURRENT_TRANSACTIONS", cast=int, default=0
            ),
        )


class TransactionRunner:
    """Read-write transactions on ``database``, each bounded by ``deadline`` as a whole (a
    queued one waits for a slot within the same deadline, else ``DeadlineExceeded``: a 503)."""

    def __init__(
        self, database: Database, deadline: timedelta, settings: TransactionSettings
    ) -> None:
        self.database = database
        self.timeout = deadline.total_seconds()
        self._retry_delay = settings.abort_retry_delay.total_seconds()
        self._slots = (
            threading.BoundedSemaphore(settings.max_concurrent)
            if settings.max_concurrent > 0
            else None
        )

    def run(self, function: Callable[..., T], *args: Any) -> T:
        slots = self._slots
        if slots is not None and not slots.acquire(timeout=self.timeout):
            raise DeadlineExceeded("no read-write transaction slot within the deadline")
        try:
            return self.database.run_in_transaction(
                function, *args, timeout_secs=self.timeout, default_retry_delay=self._retry_delay
            )
        finally:
            if slots is not None:
                slots.release()
