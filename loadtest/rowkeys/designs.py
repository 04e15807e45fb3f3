"""The row-key designs the lab compares, and the key ranges each needs for each query.

Every design stores the same rows (one per transfer side). What differs is the key, hence
where writes land in the sorted key space and which rows a query must read:

- ``timestamp_first`` ``<commit µs>#<account>#<transfer>``: the classic hotspot; every new
  row sorts after all others.
- ``salted_timestamp`` ``<hash(transfer) mod N>#<commit µs>#<account>#<transfer>``: spreads
  those appends over N places; a time range then needs N scans.
- ``account_reverse_time`` ``<account>#<reverse commit µs>#<transfer>``: the activity
  service's design (:mod:`caplab.core.rowkey`, the same function), marked ``in_use``.
- ``account_time`` ``<account>#<commit µs>#<transfer>``: the same without the reversal; the
  newest page is at the end of the account's range.
- ``hashed_account`` ``<hash(account) mod N>#<account>#<reverse commit µs>#<transfer>``: a
  salt computable from the account, so the feed stays one prefix scan.
- ``transfer_first`` ``<transfer>#<account>``: field promotion with another leading field.

Salts use a stable hash (BLAKE2b), never Python's per-process ``hash()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from caplab.core import rowkey
from loadtest.rowkeys.workload import Side, micros

DIGITS = 19
"""Forward timestamps get as many digits as the reverse ones, so both sort numerically."""

KeyRange = tuple[bytes | None, bytes | None]
"""``[start, end)``; ``None`` is the start or the end of the table."""


@dataclass(frozen=True)
class Scan:
    """What one query reads: key ranges (one ReadRows request) and an optional row limit."""

    ranges: tuple[KeyRange, ...]
    limit: int | None = None

    @property
    def is_full_table(self) -> bool:
        return self.ranges == ((None, None),)


FULL_TABLE = Scan(((None, None),))


@dataclass(frozen=True)
class Design:
    name: str
    pattern: str
    key: Callable[[Side], bytes]
    feed: Callable[[str, int], Scan]
    """account, page size -> the scan that serves that account's newest-first page."""
    time_range: Callable[[datetime, datetime], Scan]
    """[start, end) -> the scan that finds every row committed in that interval."""
    in_use: bool = False


def stable_hash(data: bytes) -> int:
    """A 64-bit hash that is the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _ts(moment: datetime) -> str:
    return str(micros(moment)).zfill(DIGITS)


def _prefix_scan(prefix: bytes, limit: int | None) -> Scan:
    return Scan(((prefix, rowkey.prefix_end(prefix)),), limit)


def _full_table(*_: object) -> Scan:
    return FULL_TABLE


def designs(salt_buckets: int = 8) -> tuple[Design, ...]:
    """Every design, ``salt_buckets`` salts for the two salted ones."""
    width = len(str(salt_buckets - 1))

    def salt(text: str) -> str:
        return str(stable_hash(text.encode()) % salt_buckets).zfill(width)

    def hashed_account_prefix(account: str) -> bytes:
        return f"{salt(account)}#".encode() + rowkey.account_prefix(account)

    return (
        Design(
            "timestamp_first",
            "<commit µs>#<account>#<transfer>",
            key=lambda s: f"{_ts(s.committed_at)}#{s.account}#{s.transfer_id}".encode(),
            feed=_full_table,
            time_range=lambda start, end: Scan(((_ts(start).encode(), _ts(end).encode()),)),
        ),
        Design(
            "salted_timestamp",
            f"<hash(transfer) mod {salt_buckets}>#<commit µs>#<account>#<transfer>",
            key=lambda s: (
                f"{salt(s.transfer_id)}#{_ts(s.committed_at)}#{s.account}#{s.transfer_id}"
            ).encode(),
            feed=_full_table,
            time_range=lambda start, end: Scan(
                tuple(
                    (f"{b:0{width}d}#{_ts(start)}".encode(), f"{b:0{width}d}#{_ts(end)}".encode())
                    for b in range(salt_buckets)
                )
            ),
        ),
        Design(
            "account_reverse_time",
            "<account>#<reverse commit µs>#<transfer>",
            key=lambda s: rowkey.row_key(s.account, s.committed_at, s.transfer_id),
            feed=lambda account, page: _prefix_scan(rowkey.account_prefix(account), page),
            time_range=_full_table,
            in_use=True,
        ),
        Design(
            "account_time",
            "<account>#<commit µs>#<transfer>",
            key=lambda s: f"{s.account}#{_ts(s.committed_at)}#{s.transfer_id}".encode(),
            feed=lambda account, page: _prefix_scan(rowkey.account_prefix(account), None),
            time_range=_full_table,
        ),
        Design(
            "hashed_account",
            f"<hash(account) mod {salt_buckets}>#<account>#<reverse commit µs>#<transfer>",
            key=lambda s: (
                hashed_account_prefix(s.account)
                + f"{rowkey.reverse_timestamp(s.committed_at)}#{s.transfer_id}".encode()
            ),
            feed=lambda account, page: _prefix_scan(hashed_account_prefix(account), page),
            time_range=_full_table,
        ),
        Design(
            "transfer_first",
            "<transfer>#<account>",
            key=lambda s: f"{s.transfer_id}#{s.account}".encode(),
            feed=_full_table,
            time_range=_full_table,
        ),
    )
