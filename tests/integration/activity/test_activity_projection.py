"""The activity projection against the Bigtable emulator: idempotent, order-free, newest
first, paginated by prefix scan, latest cell only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from caplab.core import rowkey
from caplab.core.clients import ClientFactory
from caplab.core.environment import GcpSettings, config_from
from services.activity import projection
from services.shared.events import TransferCommitted
from tests.fixtures.fanout import transfer_event

T0 = datetime(2026, 11, 26, 6, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def table(emulator_env: dict[str, str]) -> object:
    clients = ClientFactory(GcpSettings.from_config(config_from(emulator_env)))
    return clients.bigtable_table(projection.TABLE)


def _event(source: str, target: str, amount: int, at: datetime) -> TransferCommitted:
    return transfer_event(source, target, amount, committed_at=at)


def _accounts() -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]
    return f"acct-{run}-a", f"acct-{run}-b"


def test_one_event_projects_one_row_per_side_with_signed_amounts(table: object) -> None:
    """The debited side sees a negative amount and the credited side a positive one."""
    alice, bob = _accounts()
    event = _event(alice, bob, 250, T0)
    projection.project(table, event)  # type: ignore[arg-type]
    alice_feed = projection.read_feed(table, alice, 10, None)  # type: ignore[arg-type]
    bob_feed = projection.read_feed(table, bob, 10, None)  # type: ignore[arg-type]
    assert [(i.transfer_id, i.counterparty, i.amount_cents) for i in alice_feed.items] == [
        (event.transfer_id, bob, -250)
    ]
    assert [(i.counterparty, i.amount_cents) for i in bob_feed.items] == [(alice, 250)]
    assert bob_feed.projected_through == T0


def test_redelivery_and_reordering_leave_the_same_rows(table: object) -> None:
    """Projecting events twice and out of order yields one row per side per transfer, newest
    first, each with a single cell per column."""
    alice, bob = _accounts()
    events = [_event(alice, bob, 100 + i, T0 + timedelta(seconds=i)) for i in range(3)]
    for event in [events[2], events[0], events[1], events[0], events[2]]:
        projection.project(table, event)  # type: ignore[arg-type]
    feed = projection.read_feed(table, alice, 10, None)  # type: ignore[arg-type]
    assert [i.transfer_id for i in feed.items] == [e.transfer_id for e in reversed(events)]
    assert feed.projected_through == events[2].committed_at
    raw = list(
        table.read_rows(
            start_key=rowkey.account_prefix(alice),
            end_key=rowkey.prefix_end(rowkey.account_prefix(alice)),
        )
    )  # type: ignore[attr-defined]
    versions = {len(cells) for row in raw for cells in row.cells[projection.FAMILY].values()}
    assert versions == {1}


def test_pages_follow_each_other_without_gaps_or_overlap(table: object) -> None:
    """Page tokens walk the prefix newest first; the last page has no token, and every page
    reports the account's newest projected commit."""
    alice, bob = _accounts()
    events = [_event(alice, bob, 1 + i, T0 + timedelta(milliseconds=i)) for i in range(7)]
    for event in events:
        projection.project(table, event)  # type: ignore[arg-type]
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = projection.read_feed(table, bob, 3, token)  # type: ignore[arg-type]
        pages += 1
        seen += [item.transfer_id for item in page.items]
        assert page.projected_through == events[-1].committed_at
        token = page.next_page_token
        if token is None:
            break
    assert pages == 3
    assert seen == [e.transfer_id for e in reversed(events)]


def test_a_page_token_from_another_account_is_rejected(table: object) -> None:
    """A token only continues the feed it came from."""
    alice, bob = _accounts()
    for i in range(2):
        projection.project(table, _event(alice, bob, 5, T0 + timedelta(seconds=i)))  # type: ignore[arg-type]
    token = projection.read_feed(table, alice, 1, None).next_page_token  # type: ignore[arg-type]
    assert token is not None
    with pytest.raises(rowkey.InvalidKeyPart):
        projection.read_feed(table, bob, 1, token)  # type: ignore[arg-type]
