"""Project ``transfer.committed`` events into Bigtable ``account_activity`` and read the feed.

One event writes two rows, one per account side (row keys in :mod:`caplab.core.rowkey`),
each with the cells of family ``t``: ``transfer_id``, ``counterparty``, ``amount_cents`` (signed:
negative on the debited side), ``committed_at`` and ``event_id``. Every cell's timestamp is the
commit time (Bigtable keeps milliseconds), so a redelivered or reordered event writes the very
same cells: the projection is idempotent and order-free without any read-before-write.

Reads chain a family filter with ``CellsColumnLimitFilter(1)`` ("latest cell only"): the
column family's GC rule keeps one version in the cloud, but the emulator never applies GC
rules, and a reader must not depend on when garbage collection runs anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from caplab.core import rowkey
from caplab.core.timestamps import parse_rfc3339, rfc3339
from caplab.core.topology import TOPOLOGY
from services.shared.events import TransferCommitted

if TYPE_CHECKING:
    from google.cloud.bigtable.row import PartialRowData
    from google.cloud.bigtable.table import Table

TABLE = TOPOLOGY.bigtable.tables[0].name
FAMILY = next(iter(TOPOLOGY.bigtable.tables[0].column_families))
MAX_PAGE_SIZE = 100


class ProjectionError(RuntimeError):
    """Bigtable did not accept every row of an event (the push must be retried)."""


@dataclass(frozen=True)
class ActivityItem:
    transfer_id: str
    counterparty: str
    amount_cents: int
    committed_at: datetime
    event_id: str

    def as_json(self) -> dict[str, object]:
        return {
            "transfer_id": self.transfer_id,
            "counterparty": self.counterparty,
            "amount_cents": self.amount_cents,
            "committed_at": rfc3339(self.committed_at),
            "event_id": self.event_id,
        }


@dataclass(frozen=True)
class ActivityPage:
    items: list[ActivityItem]
    next_page_token: str | None
    projected_through: datetime | None
    """The newest commit time projected for the account (the first row of its prefix)."""

    def as_json(self) -> dict[str, object]:
        return {
            "items": [item.as_json() for item in self.items],
            "next_page_token": self.next_page_token,
            "projected_through": (
                rfc3339(self.projected_through) if self.projected_through else None
            ),
        }


def _sides(event: TransferCommitted) -> list[tuple[str, str, int]]:
    """(account, counterparty, signed amount) for the debited and the credited side."""
    return [
        (event.from_account, event.to_account, -event.amount_cents),
        (event.to_account, event.from_account, event.amount_cents),
    ]


def project(table: Table, event: TransferCommitted) -> None:
    """Write both rows of ``event``; raises :class:`ProjectionError` unless both landed."""
    rows = []
    for account, counterparty, amount in _sides(event):
        row = table.direct_row(rowkey.row_key(account, event.committed_at, event.transfer_id))
        cells = {
            "transfer_id": event.transfer_id,
            "counterparty": counterparty,
            "amount_cents": str(amount),
            "committed_at": rfc3339(event.committed_at),
            "event_id": event.event_id,
        }
        for column, value in cells.items():
            row.set_cell(FAMILY, column, value.encode(), timestamp=event.committed_at)
        rows.append(row)
    statuses = table.mutate_rows(rows)
    failed = [status.message for status in statuses if status.code != 0]
    if failed:
        raise ProjectionError(f"{len(failed)} of {len(rows)} rows not written: {failed[0]}")


def _latest_cells_filter() -> object:
    from google.cloud.bigtable import row_filters

    return row_filters.RowFilterChain(
        filters=[
            row_filters.FamilyNameRegexFilter(FAMILY),
            row_filters.CellsColumnLimitFilter(1),
        ]
    )


def _item(row: PartialRowData) -> ActivityItem:
    cells = row.cells[FAMILY]

    def text(column: str) -> str:
        return cells[column.encode()][0].value.decode()

    return ActivityItem(
        transfer_id=text("transfer_id"),
        counterparty=text("counterparty"),
        amount_cents=int(text("amount_cents")),
        committed_at=parse_rfc3339(text("committed_at")),
        event_id=text("event_id"),
    )


def _scan(
    table: Table, start: bytes, end: bytes, inclusive: bool, limit: int
) -> list[PartialRowData]:
    from google.cloud.bigtable.row_set import RowRange, RowSet

    row_set = RowSet()
    row_set.add_row_range(RowRange(start_key=start, end_key=end, start_inclusive=inclusive))
    return list(
        table.read_rows(row_set=row_set, limit=limit, filter_=_latest_cells_filter())  # type: ignore[arg-type]
    )


def read_feed(table: Table, account: str, limit: int, page_token: str | None) -> ActivityPage:
    """Up to ``limit`` items of ``account``'s activity, newest first, from ``page_token`` on.

    One prefix scan of ``limit + 1`` rows: the extra row says whether a next page exists.
    """
    prefix = rowkey.account_prefix(account)
    end = rowkey.prefix_end(prefix)
    if page_token is None:
        rows = _scan(table, prefix, end, inclusive=True, limit=limit + 1)
    else:
        start = rowkey.decode_page_token(page_token, prefix)
        rows = _scan(table, start, end, inclusive=False, limit=limit + 1)
    page = rows[:limit]
    items = [_item(row) for row in page]
    next_token = rowkey.encode_page_token(page[-1].row_key) if len(rows) > limit else None
    if page_token is None:
        newest = items[0].committed_at if items else None
    else:
        first = _scan(table, prefix, end, inclusive=True, limit=1)
        newest = _item(first[0]).committed_at if first else None
    return ActivityPage(items=items, next_page_token=next_token, projected_through=newest)
