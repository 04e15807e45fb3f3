"""The lab's Bigtable side: one table per design, the workload written into each, and the
product's three queries timed and counted against each.

- **feed**: one account's newest-first page, with the design's scan (a prefix scan, or the
  whole table when the account is not a prefix) and the page picked client-side.
- **time range**: every row committed in an interval, across accounts.
- **point lookup**: one row by its full key (every field of the key is known).

*Rows read* counts every row ReadRows returned for the key ranges the design needs; the
client then keeps the *useful* ones. Bigtable reads the same rows when a server-side filter
does the picking (it sends fewer back), so the count is what the query costs the cluster,
whichever side filters. Every answer is compared with the one computed from the workload:
a design whose scan missed a row is reported, not silently timed.

Tables are named ``rowkeys-<run>-<design>``, so they never collide with the application's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from caplab.core.timestamps import rfc3339
from loadtest.rowkeys.designs import Design, Scan
from loadtest.rowkeys.workload import Side, micros

if TYPE_CHECKING:
    from google.cloud.bigtable.instance import Instance
    from google.cloud.bigtable.row import PartialRowData
    from google.cloud.bigtable.table import Table

FAMILY = "t"
TABLE_PREFIX = "rowkeys-"
BATCH = 1_000
QUERY_KINDS = ("feed", "time_range", "point")


def table_id(run_id: str, design: str) -> str:
    return f"{TABLE_PREFIX}{run_id}-{design}"


@dataclass(frozen=True)
class Queries:
    """The same sampled queries for every design."""

    page: int
    feed_accounts: tuple[str, ...]
    ranges: tuple[tuple[datetime, datetime], ...]
    points: tuple[Side, ...]


def sample_queries(
    rows: Sequence[Side],
    start: datetime,
    count: int,
    page: int,
    range_seconds: float,
    duration: float,
    seed: int,
) -> Queries:
    """``count`` of each query: feeds of accounts drawn row-weighted (busy accounts are read
    more), intervals of ``range_seconds`` at random offsets into the run that began at
    ``start``, and random rows."""
    rng = random.Random(f"{seed}/queries")
    latest = max(0.0, duration - range_seconds)
    offsets = [rng.uniform(0.0, latest) for _ in range(count)]
    return Queries(
        page=page,
        feed_accounts=tuple(rng.choice(rows).account for _ in range(count)),
        ranges=tuple(
            (start + timedelta(seconds=o), start + timedelta(seconds=o + range_seconds))
            for o in offsets
        ),
        points=tuple(rng.choice(rows) for _ in range(count)),
    )


@dataclass
class QueryStats:
    kind: str
    ranges: int = 0
    full_table: bool = False
    rows_read: list[int] = field(default_factory=list)
    rows_useful: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    wrong: int = 0
    """Answers that differed from the expected one."""

    @property
    def rows_read_per_useful_row(self) -> float:
        useful = sum(self.rows_useful)
        return sum(self.rows_read) / useful if useful else 0.0

    @property
    def rows_read_per_query(self) -> float:
        return sum(self.rows_read) / len(self.rows_read) if self.rows_read else 0.0


# --- expected answers ----------------------------------------------------------------------


def newest_first(rows: Sequence[Side]) -> list[Side]:
    """Commit time descending, then transfer id ascending (the in-use key's order)."""
    return sorted(rows, key=lambda r: (-micros(r.committed_at), r.transfer_id))


def expected_feed(rows: Sequence[Side], account: str, page: int) -> list[tuple[str, str]]:
    return [r.identity for r in newest_first([r for r in rows if r.account == account])[:page]]


def expected_range(rows: Sequence[Side], start: datetime, end: datetime) -> set[tuple[str, str]]:
    return {r.identity for r in rows if start <= r.committed_at < end}


# --- Bigtable --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: bytes
    account: str
    transfer_id: str
    committed_at: str
    """RFC 3339 with microseconds, so string order is time order."""

    @property
    def identity(self) -> tuple[str, str]:
        return self.account, self.transfer_id


def _row(data: PartialRowData) -> Row:
    cells = data.cells[FAMILY]

    def value(column: str) -> str:
        return cells[column.encode()][0].value.decode()

    return Row(data.row_key, value("account"), value("transfer_id"), value("committed_at"))


def _latest_cells() -> object:
    from google.cloud.bigtable import row_filters

    return row_filters.CellsColumnLimitFilter(1)


def create_table(instance: Instance, name: str) -> Table:
    from google.cloud.bigtable import column_family

    table = instance.table(name)
    table.create(column_families={FAMILY: column_family.MaxVersionsGCRule(1)})
    return table


def write(table: Table, design: Design, rows: Sequence[Side]) -> None:
    """Every row, in batches of :data:`BATCH` mutations; raises unless all landed."""
    for start in range(0, len(rows), BATCH):
        batch = []
        for side in rows[start : start + BATCH]:
            row = table.direct_row(design.key(side))
            for column, value in side.cells().items():
                row.set_cell(FAMILY, column, value, timestamp=side.committed_at)
            batch.append(row)
        failed = [s.message for s in table.mutate_rows(batch) if s.code != 0]
        if failed:
            raise RuntimeError(f"{len(failed)} rows not written to {table.table_id}: {failed[0]}")


def read(table: Table, scan: Scan) -> list[Row]:
    """Every row ReadRows returns for ``scan`` (one request, however many ranges)."""
    from google.cloud.bigtable.row_set import RowSet

    row_set = None
    if not scan.is_full_table:
        row_set = RowSet()
        for start, end in scan.ranges:
            row_set.add_row_range_from_keys(start_key=start, end_key=end)
    rows = table.read_rows(row_set=row_set, limit=scan.limit, filter_=_latest_cells())
    return [_row(data) for data in rows]


def measure(
    table: Table, design: Design, rows: Sequence[Side], queries: Queries
) -> dict[str, QueryStats]:
    """Run every sampled query against ``table`` with ``design``'s scans."""
    results = {kind: QueryStats(kind) for kind in QUERY_KINDS}

    def run(stats: QueryStats, scan: Scan) -> list[Row]:
        stats.ranges = len(scan.ranges)
        stats.full_table = scan.is_full_table
        began = time.perf_counter()
        found = read(table, scan)
        stats.seconds.append(time.perf_counter() - began)
        stats.rows_read.append(len(found))
        return found

    feed = results["feed"]
    for account in queries.feed_accounts:
        found = [r for r in run(feed, design.feed(account, queries.page)) if r.account == account]
        by_id = sorted(found, key=lambda r: r.transfer_id)
        page = sorted(by_id, key=lambda r: r.committed_at, reverse=True)[: queries.page]
        feed.rows_useful.append(len(page))
        feed.wrong += [r.identity for r in page] != expected_feed(rows, account, queries.page)

    time_range = results["time_range"]
    for start, end in queries.ranges:
        low, high = rfc3339(start), rfc3339(end)
        found = run(time_range, design.time_range(start, end))
        hits = {r.identity for r in found if low <= r.committed_at < high}
        time_range.rows_useful.append(len(hits))
        time_range.wrong += hits != expected_range(rows, start, end)

    point = results["point"]
    for side in queries.points:
        key = design.key(side)
        found = run(point, Scan(((key, key + b"\x00"),)))  # exactly the one key
        point.rows_useful.append(sum(r.identity == side.identity for r in found))
        point.wrong += [r.identity for r in found] != [side.identity]
    return results


def sample_row_keys(table: Table) -> list[bytes]:
    """The table's tablet boundaries as Bigtable reports them (the last, empty key is the
    table's end and is dropped)."""
    return [sample.row_key for sample in table.sample_row_keys() if sample.row_key]
