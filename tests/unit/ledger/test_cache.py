"""The balance cache against its promises, on a fake clock: named cases, then random
operation sequences checked against a reference model (hypothesis' state machine)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from services.ledger.cache import BalanceCache
from services.ledger.store import AccountRow

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TTL = timedelta(seconds=30)


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def row(version: int, account: str = "a") -> AccountRow:
    return AccountRow(account, "owner", 100 * version, version, START)


def cache_on(clock: FakeClock, max_entries: int = 100, ttl: timedelta = TTL) -> BalanceCache:
    return BalanceCache(ttl, max_entries, clock=clock)


def fill(cache: BalanceCache, clock: FakeClock, version: int, account: str = "a") -> bool:
    """A read of ``version`` whose timestamp is now."""
    return cache.put(row(version, account), clock(), clock().isoformat())


def test_a_miss_a_fill_then_hits_while_young_enough() -> None:
    clock = FakeClock()
    cache = cache_on(clock)
    assert cache.get("a", TTL) is None
    fill(cache, clock, 1)
    clock.advance(2)
    hit = cache.get("a", TTL)
    assert hit is not None
    assert (hit.entry.row.version, hit.age) == (1, timedelta(seconds=2))
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_a_tighter_bound_misses_without_dropping_the_entry_the_ttl_drops_it() -> None:
    """At 10 s old, a caller asking for 5 s misses and the entry stays (a caller allowing
    20 s is served); past the TTL every caller misses and the entry expires."""
    clock = FakeClock()
    cache = cache_on(clock)
    fill(cache, clock, 1)
    clock.advance(10)
    assert cache.get("a", timedelta(seconds=5)) is None
    assert cache.stats().too_old_for_request == 1
    assert cache.stats().expirations == 0
    assert cache.get("a", timedelta(seconds=20)) is not None
    clock.advance(21)
    assert cache.get("a", timedelta(hours=1)) is None
    stats = cache.stats()
    assert (stats.too_old_for_request, stats.expirations, stats.entries) == (1, 1, 0)


def test_age_counts_from_the_read_timestamp_not_the_fill() -> None:
    """A read that took 8 s to come back is 8 s old when filled: a 5 s bound misses."""
    clock = FakeClock()
    cache = cache_on(clock)
    read_at = clock()
    clock.advance(8)
    cache.put(row(1), read_at, read_at.isoformat())
    assert cache.get("a", timedelta(seconds=5)) is None
    hit = cache.get("a", timedelta(seconds=10))
    assert hit is not None
    assert hit.age == timedelta(seconds=8)


def test_a_read_older_than_the_ttl_is_not_filled() -> None:
    clock = FakeClock()
    cache = cache_on(clock)
    read_at = clock()
    clock.advance(31)
    assert cache.put(row(1), read_at, read_at.isoformat()) is False
    assert cache.stats().entries == 0


def test_invalidation_drops_only_older_versions() -> None:
    """An event for version 2 drops a cached version 1, not a cached version 2."""
    clock = FakeClock()
    cache = cache_on(clock)
    fill(cache, clock, 1)
    assert cache.invalidate("a", 2) is True
    fill(cache, clock, 2)
    assert cache.invalidate("a", 2) is False
    assert cache.stats().invalidations == 1


def test_the_cache_fills_again_after_an_invalidation() -> None:
    """After an invalidation the next read's fill (the new version) is served."""
    clock = FakeClock()
    cache = cache_on(clock)
    fill(cache, clock, 1)
    cache.invalidate("a", 2)
    assert cache.get("a", TTL) is None
    assert fill(cache, clock, 2) is True
    hit = cache.get("a", TTL)
    assert hit is not None
    assert hit.entry.row.version == 2


def test_a_fill_from_a_read_older_than_an_invalidation_is_refused() -> None:
    """A slow read of version 1 finishing after the event for version 2 is not cached."""
    clock = FakeClock()
    cache = cache_on(clock)
    cache.invalidate("a", 2)
    assert fill(cache, clock, 1) is False
    assert cache.get("a", TTL) is None
    assert cache.stats().refused_fills == 1


def test_eviction_at_the_cap_drops_the_least_recently_used() -> None:
    """Cap 2: a, b filled, a read again, c filled: b (least recently used) is evicted."""
    clock = FakeClock()
    cache = cache_on(clock, max_entries=2)
    fill(cache, clock, 1, "a")
    fill(cache, clock, 1, "b")
    assert cache.get("a", TTL) is not None
    fill(cache, clock, 1, "c")
    assert cache.get("b", TTL) is None
    assert cache.get("a", TTL) is not None
    assert cache.get("c", TTL) is not None
    stats = cache.stats()
    assert (stats.evictions, stats.entries, stats.max_entries) == (1, 2, 2)


def test_the_sweep_drops_entries_read_once() -> None:
    """Accounts read once and never again leave memory one TTL later, without any get."""
    clock = FakeClock()
    cache = cache_on(clock)
    for account in ("a", "b", "c"):
        fill(cache, clock, 1, account)
    clock.advance(31)
    fill(cache, clock, 1, "d")
    stats = cache.stats()
    assert (stats.entries, stats.expirations, stats.evictions) == (1, 3, 0)


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries must be at least 1, not 0"):
        BalanceCache(TTL, 0)


def test_a_cap_of_one_keeps_the_last_fill() -> None:
    clock = FakeClock()
    cache = cache_on(clock, max_entries=1)
    fill(cache, clock, 1, "a")
    fill(cache, clock, 1, "b")
    assert cache.get("a", TTL) is None
    assert cache.get("b", TTL) is not None
    assert (cache.stats().entries, cache.stats().evictions) == (1, 1)


def test_an_entry_exactly_as_old_as_the_bound_or_the_ttl_is_served() -> None:
    """Within the bound includes it: at 10 s a 10 s bound is served; a read exactly one TTL
    old is filled and served under the TTL, and is dropped a microsecond later."""
    clock = FakeClock()
    cache = cache_on(clock)
    fill(cache, clock, 1, "a")
    clock.advance(10)
    assert cache.get("a", timedelta(seconds=10)) is not None
    read_at = clock() - TTL
    assert cache.put(row(1, "b"), read_at, read_at.isoformat()) is True
    hit = cache.get("b", TTL)
    assert hit is not None
    assert hit.age == TTL
    clock.advance(0.000001)
    assert cache.get("b", timedelta(hours=1)) is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.too_old_for_request, stats.expirations) == (2, 1, 0, 1)


def test_an_entry_past_the_ttl_between_sweeps_is_served_to_no_caller() -> None:
    """TTL expiry on the get itself (the last sweep was recent): a read filled 20 s late is
    past the TTL 15 s later, even for a caller allowing an hour; the entry goes."""
    clock = FakeClock()
    cache = cache_on(clock)
    read_at = clock() - timedelta(seconds=20)
    cache.put(row(1), read_at, read_at.isoformat())
    clock.advance(15)
    assert cache.get("a", timedelta(hours=1)) is None
    stats = cache.stats()
    assert (stats.expirations, stats.too_old_for_request, stats.misses, stats.entries) == (
        1,
        0,
        1,
        0,
    )
    assert fill(cache, clock, 1) is True


def test_a_newer_entry_blocks_an_older_read_until_it_expires() -> None:
    """A cached version 2 refuses a later fill of version 1 while within the TTL (at exactly
    the TTL too); once past it, the older read replaces it and the expiry is counted."""
    clock = FakeClock()
    cache = cache_on(clock)
    read_at = clock() - timedelta(seconds=10)
    cache.put(row(2), read_at, read_at.isoformat())
    clock.advance(20)
    assert fill(cache, clock, 1) is False
    clock.advance(0.000001)
    assert fill(cache, clock, 1) is True
    hit = cache.get("a", TTL)
    assert hit is not None
    assert hit.entry.row.version == 1
    assert cache.stats().expirations == 1


def test_the_sweep_runs_once_a_ttl_has_passed_and_spares_entries_exactly_a_ttl_old() -> None:
    """The cache starts at T0: at T0 + TTL a fill sweeps, dropping a read taken before T0
    and keeping one taken at T0."""
    clock = FakeClock()
    cache = cache_on(clock)
    before = clock() - timedelta(seconds=1)
    cache.put(row(1, "old"), before, before.isoformat())
    fill(cache, clock, 1, "edge")
    clock.advance(30)
    fill(cache, clock, 1, "new")
    stats = cache.stats()
    assert (stats.entries, stats.expirations) == (2, 1)
    assert cache.get("edge", TTL) is not None


def test_the_counters_add_up_over_many_events() -> None:
    """Each counter counts every event of its kind, from every place it happens."""
    clock = FakeClock()
    cache = cache_on(clock, max_entries=2)
    late = clock() - timedelta(seconds=25)
    for account in ("a", "b"):
        cache.put(row(1, account), late, late.isoformat())  # 25 s old on arrival
    clock.advance(10)
    assert cache.get("a", TTL) is None  # expired on the get
    assert cache.get("b", TTL) is None  # expired on the get
    for _ in range(2):
        assert cache.put(row(1, "c"), late, late.isoformat()) is False  # expired on arrival
    for account in ("c", "d"):
        fill(cache, clock, 1, account)
    clock.advance(10)
    for account in ("c", "d"):
        assert cache.get(account, timedelta(seconds=5)) is None  # too old for the caller
        assert cache.get(account, TTL) is not None
    for account in ("c", "d"):
        assert cache.invalidate(account, 2) is True
        assert fill(cache, clock, 1, account) is False  # superseded
    for account in ("e", "f", "g", "h"):
        fill(cache, clock, 3, account)  # g evicts e, h evicts f
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.too_old_for_request) == (2, 4, 2)
    assert (stats.expirations, stats.invalidations, stats.refused_fills) == (4, 2, 2)
    assert (stats.evictions, stats.entries) == (2, 2)


def test_expirations_are_counted_wherever_they_happen() -> None:
    """On a get (a, b), on a fill replacing an expired entry (c, d), on a fill arriving
    expired (e), and by the sweep (the new c and d, one TTL later): 7 in all."""
    clock = FakeClock()
    cache = cache_on(clock)
    late = clock() - timedelta(seconds=25)
    for account in ("a", "b", "c", "d"):
        cache.put(row(1, account), late, late.isoformat())
    clock.advance(10)
    for account in ("a", "b"):
        assert cache.get(account, TTL) is None
    for account in ("c", "d"):
        assert fill(cache, clock, 1, account) is True
    assert cache.put(row(1, "e"), late, late.isoformat()) is False
    assert cache.stats().expirations == 5
    clock.advance(31)
    assert cache.get("z", TTL) is None
    stats = cache.stats()
    assert (stats.expirations, stats.entries) == (7, 0)


def test_a_fill_keeps_the_read_timestamp_as_answered() -> None:
    """The text keeps Spanner's nanoseconds, which a datetime cannot hold."""
    clock = FakeClock()
    cache = cache_on(clock)
    cache.put(row(1), clock(), "2026-01-02T03:04:05.123456789Z")
    hit = cache.get("a", TTL)
    assert hit is not None
    assert hit.entry.read_timestamp_text == "2026-01-02T03:04:05.123456789Z"


def test_the_default_clock_is_the_utc_wall_clock() -> None:
    """Reads carry aware UTC timestamps: the default clock must compare with them."""
    cache = BalanceCache(TTL, 10)
    cache.put(row(1), datetime.now(UTC), "now")
    assert cache.get("a", TTL) is not None


@dataclass
class ModelEntry:
    version: int
    read_at: datetime


class CacheAgainstModel(RuleBasedStateMachine):
    """Random gets, fills, invalidations and clock moves on 3 accounts with a cap of 2.

    The reference model is the contract written naively: the newest fill of each account, the
    invalidations of the last TTL, and the order of use. From it the model decides what the
    cache *must* do (serve a fresh entry among the ``cap`` most recently used; refuse an
    expired or superseded fill) and, where the cap allowed an eviction the model cannot see,
    what it *may* do. Whatever the cache serves must be the model's fill, within the bound."""

    CAP = 2

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.cache = cache_on(self.clock, max_entries=self.CAP)
        self.newest: dict[str, ModelEntry] = {}
        self.marks: dict[str, tuple[int, datetime]] = {}
        self.used: list[str] = []
        """Accounts, most recently filled or served last."""

    def _use(self, account: str) -> None:
        if account in self.used:
            self.used.remove(account)
        self.used.append(account)

    def _live(self, account: str) -> ModelEntry | None:
        """The newest fill unless it is past the TTL (then forgotten, as the cache does)."""
        current = self.newest.get(account)
        if current is not None and self.clock() - current.read_at > TTL:
            del self.newest[account]
            return None
        return current

    def _superseded(self, account: str) -> int:
        version, at = self.marks.get(account, (0, START))
        return version if self.clock() - at <= TTL else 0

    def _surely_cached(self, account: str) -> bool:
        """Among the ``cap`` most recently used: no eviction can have touched it."""
        return account in self.used[-self.CAP :]

    @rule(seconds=st.sampled_from([0, 1, 7, 29, 31]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(account=st.sampled_from("abc"), version=st.integers(1, 4), lag=st.sampled_from([0, 5]))
    def fill(self, account: str, version: int, lag: int) -> None:
        read_at = self.clock() - timedelta(seconds=lag)
        stored = self.cache.put(row(version, account), read_at, read_at.isoformat())
        current = self._live(account)
        if self.clock() - read_at > TTL or version < self._superseded(account):
            assert not stored
        elif current is not None and (current.version, current.read_at) > (version, read_at):
            if self._surely_cached(account):
                assert not stored, "an older read replaced a newer cached one"
        else:
            assert stored
        if stored:
            self.newest[account] = ModelEntry(version, read_at)
            self._use(account)

    @rule(account=st.sampled_from("abc"), version=st.integers(1, 5))
    def invalidate(self, account: str, version: int) -> None:
        self.cache.invalidate(account, version)
        self.marks[account] = (max(version, self._superseded(account)), self.clock())
        current = self._live(account)
        if current is not None and current.version < version:
            del self.newest[account]

    @rule(account=st.sampled_from("abc"), bound=st.sampled_from([0, 3, 10, 30]))
    def get(self, account: str, bound: int) -> None:
        max_age = timedelta(seconds=bound)
        hit = self.cache.get(account, max_age)
        current = self._live(account)
        fresh = current is not None and self.clock() - current.read_at <= max_age
        if hit is not None:
            assert current is not None, "served an entry the contract had dropped"
            served = (hit.entry.row.version, hit.entry.read_timestamp)
            assert served == (current.version, current.read_at)
            assert hit.age <= min(max_age, TTL)
            self._use(account)
        elif fresh:
            assert not self._surely_cached(account), "a fresh, recently used entry missed"
            del self.newest[account]  # evicted by the cap

    @invariant()
    def within_the_cap(self) -> None:
        assert self.cache.stats().entries <= self.CAP


TestCacheAgainstModel = CacheAgainstModel.TestCase
TestCacheAgainstModel.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
