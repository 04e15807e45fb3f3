"""Cache-aside for balances, in this process: entries expire after a TTL and are dropped
early when a ``transfer.committed`` event for the account is pushed to ``/internal/invalidate``.

Written by hand (not a caching library) because the lesson is in the details: an entry filled
from a read that raced with an invalidation must not outlive it. Each invalidation records the
newest version it announced; a fill carrying an older version is refused, so a slow read cannot
re-insert a value the event already superseded.

Each Cloud Run instance holds its own cache, and a push reaches one instance: with more than one
instance, the others serve their entry until the TTL. The TTL is therefore the real staleness
bound in the cloud; event invalidation shortens it on the instance that receives the event.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from services.ledger.store import AccountRow


@dataclass(frozen=True)
class Entry:
    row: AccountRow
    read_timestamp_text: str
    stored_at: float

    def age(self, now: float) -> timedelta:
        return timedelta(seconds=now - self.stored_at)

    def age_now(self) -> timedelta:
        return self.age(time.monotonic())


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    expirations: int = 0
    invalidations: int = 0
    refused_fills: int = 0
    entries: int = 0


class BalanceCache:
    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl
        self._entries: dict[str, Entry] = {}
        self._superseded: dict[str, int] = {}
        self._stats = CacheStats()
        self._lock = threading.Lock()

    def get(self, account: str, max_age: timedelta) -> Entry | None:
        """The entry if younger than ``max_age`` (and the TTL); counts a hit or a miss."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(account)
            if entry is not None and entry.age(now) > min(max_age, self.ttl):
                if entry.age(now) > self.ttl:
                    del self._entries[account]
                    self._stats.expirations += 1
                entry = None
            if entry is None:
                self._stats.misses += 1
            else:
                self._stats.hits += 1
            return entry

    def put(self, row: AccountRow, read_timestamp_text: str) -> Entry:
        """Store a fresh read unless an invalidation already announced a newer version."""
        entry = Entry(row, read_timestamp_text, time.monotonic())
        with self._lock:
            if row.version < self._superseded.get(row.account, 0):
                self._stats.refused_fills += 1
            else:
                self._entries[row.account] = entry
        return entry

    def invalidate(self, account: str, version: int) -> bool:
        """Drop ``account``'s entry if older than ``version``; True when one was dropped."""
        with self._lock:
            self._superseded[account] = max(version, self._superseded.get(account, 0))
            entry = self._entries.get(account)
            if entry is None or entry.row.version >= version:
                return False
            del self._entries[account]
            self._stats.invalidations += 1
            return True

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(**{**vars(self._stats), "entries": len(self._entries)})
