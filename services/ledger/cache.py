"""Cache-aside for balances, in this process: a size-capped LRU whose entries expire a TTL after
their read timestamp, and are dropped early when a ``transfer.committed`` event for the account
is pushed to ``/internal/invalidate``.

- **Age** counts from the entry's *read timestamp* (when Spanner read the balance), not from
  when the answer reached the cache: a cached answer is never older than the bound it is
  served under (the caller's ``staleness``, capped by the TTL). The clock is the instance's
  wall clock; Spanner's timestamps and Cloud Run's clocks are both synchronised to Google's
  time (locally the emulator and the ledger share one clock).
- **Bounded**: at most ``max_entries`` entries; a fill beyond the cap evicts the least
  recently used entry (counted in ``evictions``). Expired entries are swept at most once per
  TTL (counted in ``expirations``), so an account read once does not stay in memory.
- **Refused fills**: each invalidation records the newest version it announced; a fill
  carrying an older version is refused, so a slow read cannot re-insert a value an event
  already superseded. A mark is kept for one TTL: a fill it could refuse would come from a read
  older than the mark, hence older than the TTL, hence expired on arrival anyway.

Written by hand (an ``OrderedDict`` is the LRU) because the lesson is in these details:
``cachetools``' ``TTLCache`` measures age from insertion and knows nothing of versions.

Each Cloud Run instance holds its own cache, and a push reaches one instance: with more than one
instance, the others serve their entry until the TTL. The TTL is therefore the real staleness
bound in the cloud; event invalidation shortens it on the instance that receives the event.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.ledger.store import AccountRow

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Entry:
    row: AccountRow
    read_timestamp: datetime
    read_timestamp_text: str
    """The read timestamp as answered when the entry was filled (nanoseconds kept)."""

    def age(self, now: datetime) -> timedelta:
        return max(now - self.read_timestamp, timedelta(0))


@dataclass(frozen=True)
class Hit:
    entry: Entry
    age: timedelta
    """The entry's age when it was served."""


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    """Every get that served no entry, whatever the reason (the three below included)."""
    too_old_for_request: int = 0
    """Misses on an entry younger than the TTL but older than the caller's ``staleness``
    (the entry stays)."""
    expirations: int = 0
    """Entries dropped because they were older than the TTL (on a get, a fill or a sweep)."""
    evictions: int = 0
    """Entries dropped to stay within ``max_entries`` (least recently used first)."""
    invalidations: int = 0
    refused_fills: int = 0
    entries: int = 0
    max_entries: int = 0


@dataclass(frozen=True)
class _Superseded:
    version: int
    recorded_at: datetime


class BalanceCache:
    def __init__(self, ttl: timedelta, max_entries: int, clock: Clock = wall_clock) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        """Least recently used first."""
        self._superseded: OrderedDict[str, _Superseded] = OrderedDict()
        """Oldest mark first."""
        self._stats = CacheStats(max_entries=max_entries)
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def get(self, account: str, max_age: timedelta) -> Hit | None:
        """The entry and its age if that is within ``max_age`` and the TTL; counts a hit or
        a miss.

        An entry past the TTL is dropped; one only past ``max_age`` stays for other callers."""
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            entry = self._entries.get(account)
            if entry is not None and entry.age(now) > self.ttl:
                del self._entries[account]
                self._stats.expirations += 1
                entry = None
            elif entry is not None and entry.age(now) > max_age:
                self._stats.too_old_for_request += 1
                entry = None
            if entry is None:
                self._stats.misses += 1
                return None
            self._entries.move_to_end(account)
            self._stats.hits += 1
            return Hit(entry, entry.age(now))

    def put(self, row: AccountRow, read_timestamp: datetime, read_timestamp_text: str) -> bool:
        """Store a read unless an invalidation within the TTL announced a newer version, the
        entry holds a newer read, or the read is past the TTL; True when stored."""
        entry = Entry(row, read_timestamp, read_timestamp_text)
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            if row.version < self._superseded_version(row.account, now):
                self._stats.refused_fills += 1
                return False
            if entry.age(now) > self.ttl:
                self._stats.expirations += 1
                return False
            current = self._entries.get(row.account)
            if current is not None and current.age(now) > self.ttl:
                del self._entries[row.account]
                self._stats.expirations += 1
            elif current is not None and (current.row.version, current.read_timestamp) > (
                row.version,
                read_timestamp,
            ):
                return False
            self._entries[row.account] = entry
            self._entries.move_to_end(row.account)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self._stats.evictions += 1
            return True

    def invalidate(self, account: str, version: int) -> bool:
        """Drop ``account``'s entry if older than ``version``; True when one was dropped."""
        with self._lock:
            now = self._clock()
            self._sweep_if_due(now)
            newest = max(version, self._superseded_version(account, now))
            self._superseded.pop(account, None)
            self._superseded[account] = _Superseded(newest, now)
            entry = self._entries.get(account)
            if entry is None or entry.row.version >= version:
                return False
            del self._entries[account]
            self._stats.invalidations += 1
            return True

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(**{**vars(self._stats), "entries": len(self._entries)})

    def _superseded_version(self, account: str, now: datetime) -> int:
        """The newest version announced for ``account`` within the TTL (0: none)."""
        mark = self._superseded.get(account)
        if mark is None or now - mark.recorded_at > self.ttl:
            return 0
        return mark.version

    def _sweep_if_due(self, now: datetime) -> None:
        """Drop expired entries and marks older than the TTL, at most once per TTL: a full
        scan, so its cost (at most ``max_entries`` entries) is paid once per TTL."""
        if now - self._last_sweep < self.ttl:
            return
        self._last_sweep = now
        expired = [a for a, e in self._entries.items() if e.age(now) > self.ttl]
        for account in expired:
            del self._entries[account]
        self._stats.expirations += len(expired)
        while self._superseded:
            account, mark = next(iter(self._superseded.items()))
            if now - mark.recorded_at <= self.ttl:
                break
            del self._superseded[account]
