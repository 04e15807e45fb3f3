"""The activity service as a process: events pushed by the Pub/Sub emulator become the
Bigtable read model, served newest first with page tokens; poison goes to the dead-letter
topic without stopping the flow."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from tests.fixtures.fanout import DeadLetterReader, EventPublisher, eventually, unique


@pytest.fixture(scope="module")
def activity(
    fanout_service: Callable[[str], launcher.RunningService],
) -> launcher.RunningService:
    return fanout_service("activity")


def _feed(activity: launcher.RunningService, account: str, **params: object) -> dict:
    response = httpx.get(f"{activity.url}/v1/accounts/{account}/activity", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_n_transfers_make_2n_rows_newest_first_and_paginated(
    activity: launcher.RunningService, events: EventPublisher
) -> None:
    """N transfers among three accounts project exactly 2N rows (one per side); each feed is
    newest first and its pages chain without gaps."""
    a, b, c = unique("acct"), unique("acct"), unique("acct")
    pairs = [(a, b), (b, c), (c, a), (a, c), (b, a), (a, b)]
    published = [events.transfer(src, dst, 100 + i) for i, (src, dst) in enumerate(pairs)]

    def all_projected() -> dict[str, list[dict]] | None:
        feeds = {acct: _feed(activity, acct, limit=100)["items"] for acct in (a, b, c)}
        return feeds if sum(len(items) for items in feeds.values()) >= 2 * len(pairs) else None

    feeds = eventually(all_projected)
    assert sum(len(items) for items in feeds.values()) == 2 * len(pairs)
    expected_a = [e for e in reversed(published) if a in (e.from_account, e.to_account)]
    assert [item["transfer_id"] for item in feeds[a]] == [e.transfer_id for e in expected_a]
    signed = {item["transfer_id"]: item["amount_cents"] for item in feeds[a]}
    assert signed[published[0].transfer_id] == -100
    assert signed[published[2].transfer_id] == 102

    pages, token = [], None
    while True:
        params = {"limit": 2} | ({"page_token": token} if token else {})
        page = _feed(activity, a, **params)
        pages.append([item["transfer_id"] for item in page["items"]])
        assert page["projected_through"] == feeds[a][0]["committed_at"]
        token = page["next_page_token"]
        if token is None:
            break
    assert [tid for page in pages for tid in page] == [item["transfer_id"] for item in feeds[a]]
    assert [len(page) for page in pages] == [2, 2, 1]


def test_poison_message_is_dead_lettered_and_later_events_flow(
    activity: launcher.RunningService,
    events: EventPublisher,
    dead_letter_reader: Callable[[str], DeadLetterReader],
) -> None:
    """An undecodable payload lands on the projector's dead-letter topic with its reason, and
    an event published after it is projected."""
    reader = dead_letter_reader(TOPOLOGY.subscription("activity-projector").dead_letter_topic)
    marker = unique("poison")
    events.raw(b"\xff not json", marker=marker)
    a, b = unique("acct"), unique("acct")
    later = events.transfer(a, b, 7)

    def poison_seen() -> list | None:
        mine = [m for m in reader.pull() if m.attributes.get("marker") == marker]
        return mine or None

    dead = eventually(poison_seen)
    assert dead[0].data == b"\xff not json"
    assert dead[0].attributes["source_subscription"] == "activity-projector"
    assert dead[0].attributes["dead_letter_reason"].startswith("undecodable")
    items = eventually(lambda: _feed(activity, b)["items"] or None)
    assert items[0]["transfer_id"] == later.transfer_id


def test_bad_page_token_and_limit_are_problem_json_naming_the_field(
    activity: launcher.RunningService,
) -> None:
    """Invalid query parameters answer 422 problem+json naming the parameter."""
    bad_token = httpx.get(f"{activity.url}/v1/accounts/x/activity", params={"page_token": "@@"})
    bad_limit = httpx.get(f"{activity.url}/v1/accounts/x/activity", params={"limit": 0})
    for response, field in ((bad_token, "query.page_token"), (bad_limit, "query.limit")):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == field
