"""Each read mode returns what it promises, through HTTP against the emulators."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest

from caplab.core.durations import format_duration
from caplab.core.timestamps import parse_rfc3339
from caplab.local.launcher import RunningService
from tests.e2e.ledger.conftest import OpenAccount, transfer
from tests.fixtures.fanout import eventually
from tests.fixtures.ledger_clock import database_now, wait_for_database_time
from tests.fixtures.services import OUTAGE_CLIENT_TIMEOUT, OUTAGE_DEADLINE, ServiceRunner
from tests.fixtures.tcp_link import tcp_link


def read(client: httpx.Client, account: str, **params: str) -> dict:
    response = client.get(f"/v1/accounts/{account}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def version_at(moment: datetime, commits: list[datetime]) -> int:
    """The account's version at ``moment``, given the commit times of its versions 1, 2..."""
    return sum(commit <= moment for commit in commits)


def test_strong_sees_the_update_and_stale_reads_keep_their_bound(
    client: httpx.Client, open_account: OpenAccount
) -> None:
    """After a transfer, a strong read returns the new version. An exact-staleness read is
    served exactly ``staleness`` before the database's time (bracketed by strong reads sent
    before and after it) and returns the version current at its read timestamp; aimed
    half-way between the account's creation and the transfer, that is the older version. A
    bounded read is served no more than its bound in the past, with the version current then.

    Times are the database's: the test waits (on the database clock) until the account is a
    second old before the transfer, so the exact read's target lies inside that second."""
    source, target = open_account(500), open_account(0)
    url = str(client.base_url).rstrip("/")
    created = parse_rfc3339(read(client, source)["updated_at"])
    wait_for_database_time(client, url, source, created + timedelta(seconds=1))
    committed = transfer(client, source, target, 200)
    assert committed.status_code == 201, committed.text
    commits = [created, parse_rfc3339(committed.json()["commit_timestamp"])]

    strong = read(client, source, consistency="strong")
    assert (strong["version"], strong["balance_cents"]) == (2, 300)
    assert strong["served_by"] == "leader"
    assert parse_rfc3339(strong["read_timestamp"]) >= commits[1]

    before = database_now(client, url, source)
    staleness = before - (created + (commits[1] - created) / 2)
    stale = read(client, source, consistency="exact", staleness=format_duration(staleness))
    after = database_now(client, url, source)
    read_at = parse_rfc3339(stale["read_timestamp"])
    assert before - staleness <= read_at <= after - staleness
    version = version_at(read_at, commits)
    assert (stale["version"], stale["balance_cents"]) == (version, {1: 500, 2: 300}[version])
    assert (stale["served_by"], stale["consistency"]) == ("replica", "exact")
    assert stale["staleness"] == format_duration(staleness)

    before = database_now(client, url, source)
    bounded = read(client, source, consistency="bounded", staleness="1s")
    after = database_now(client, url, source)
    read_at = parse_rfc3339(bounded["read_timestamp"])
    assert before - timedelta(seconds=1) <= read_at <= after
    assert bounded["version"] == version_at(read_at, commits)
    assert (bounded["consistency"], bounded["staleness"]) == ("bounded", "1s")


def test_snapshot_reads_all_accounts_at_one_timestamp(
    client: httpx.Client, open_account: OpenAccount
) -> None:
    """A snapshot answers every named account at one read timestamp with the total."""
    accounts = [open_account(100), open_account(200), open_account(300)]
    assert transfer(client, accounts[0], accounts[2], 40).status_code == 201
    response = client.get("/v1/snapshot", params={"accounts": ",".join(accounts)})
    assert response.status_code == 200, response.text
    snapshot = response.json()
    assert snapshot["total_cents"] == 600
    assert [a["balance_cents"] for a in snapshot["accounts"]] == [60, 200, 340]
    assert [a["version"] for a in snapshot["accounts"]] == [2, 1, 2]
    assert snapshot["consistency"] == "strong"
    assert parse_rfc3339(snapshot["read_timestamp"])


def test_cached_read_is_stale_until_the_invalidation_arrives(
    client: httpx.Client, open_account: OpenAccount, services: ServiceRunner
) -> None:
    """A cached balance survives a transfer until its event, moved by the relay and pushed by
    Pub/Sub, invalidates it; the next cached read returns the new version."""
    source, target = open_account(1000), open_account(0)
    first = read(client, source, consistency="cached")
    assert first["served_by"] == "leader"  # a miss fills the cache
    assert transfer(client, source, target, 250).status_code == 201

    # No relay is running yet: the event waits in the Outbox, the cache still answers.
    hit = read(client, source, consistency="cached")
    assert (hit["served_by"], hit["version"], hit["balance_cents"]) == ("cache", 1, 1000)
    assert hit["cache_age"] is not None
    invalidations = client.get("/internal/cache").json()["invalidations"]

    with services.restartable("relay", {"CAPLAB_RELAY_POLL_INTERVAL": "20ms"}):

        def moved_on() -> dict | None:
            latest = read(client, source, consistency="cached")
            return latest if latest["version"] != 1 else None

        latest = eventually(moved_on)
    assert (latest["version"], latest["balance_cents"]) == (2, 750)
    assert client.get("/internal/cache").json()["invalidations"] > invalidations


@pytest.mark.parametrize(
    ("path", "params", "status", "field", "needle"),
    [
        ("/v1/accounts/{a}", {"consistency": "psychic"}, 422, "query.consistency", "bounded"),
        ("/v1/accounts/{a}", {"consistency": "exact", "staleness": "2h"}, 422, "query.staleness",
         "maximum"),
        ("/v1/accounts/{a}", {"consistency": "exact", "staleness": "soon"}, 422,
         "query.staleness", "10s"),
        ("/v1/accounts/{a}", {"consistency": "exact", "staleness": "59m"}, 422,
         "query.staleness", "that far back"),
        ("/v1/accounts/nobody-{a}", {}, 404, "path.account_id", "does not exist"),
        ("/v1/snapshot", {"accounts": "{a},nobody-{a}"}, 404, "query.accounts", "nobody"),
        ("/v1/snapshot", {"accounts": "{a}", "consistency": "cached"}, 422, "query.consistency",
         "strong"),
    ],
)  # fmt: skip
def test_read_errors_are_problems_naming_the_field(
    client: httpx.Client,
    open_account: OpenAccount,
    path: str,
    params: dict[str, str],
    status: int,
    field: str,
    needle: str,
) -> None:
    """Bad read requests answer RFC 9457 problems that name the offending field."""
    account = open_account(1)
    response = client.get(
        path.format(a=account), params={k: v.format(a=account) for k, v in params.items()}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert needle in response.json()["detail"]


def test_leader_partitioned_strong_fails_at_the_deadline_stale_still_answers(
    services: ServiceRunner,
    service_environ: dict[str, str],
    client: httpx.Client,
    open_account: OpenAccount,
) -> None:
    """CP vs AP: with the leader link a black hole (connected, never answered) and the
    replica link up, a strong read is cut by the ledger's own deadline and answered 503 +
    Retry-After, never a wrong answer, while an exact-staleness read still answers from the
    replica link. Only a deadline ends a call into a black hole: the answer comes within
    ``OUTAGE_CLIENT_TIMEOUT`` (the client libraries' own limits are far longer), and the
    problem says it was the time limit."""
    account = open_account(42)
    url = str(client.base_url).rstrip("/")
    created = parse_rfc3339(read(client, account)["updated_at"])
    wait_for_database_time(client, url, account, created + timedelta(milliseconds=100))
    with tcp_link(service_environ["SPANNER_EMULATOR_HOST"]) as leader:
        leader.hold_at(b"")
        partitioned = {
            "SPANNER_EMULATOR_HOST": leader.address,
            "SPANNER_REPLICA_EMULATOR_HOST": service_environ["SPANNER_EMULATOR_HOST"],
            "CAPLAB_LEDGER_DEADLINE": OUTAGE_DEADLINE,
        }
        with (
            services.restartable("ledger", partitioned, ready_path="/healthz") as cut_off,
            httpx.Client(base_url=cut_off.url, timeout=OUTAGE_CLIENT_TIMEOUT) as http,
        ):
            not_ready = http.get("/readyz")
            strong = http.get(f"/v1/accounts/{account}")
            stale = http.get(
                f"/v1/accounts/{account}", params={"consistency": "exact", "staleness": "100ms"}
            )
        assert leader.wait_held(timeout=0), "the strong read never reached the leader link"
    assert not_ready.status_code == 503
    assert strong.status_code == 503
    assert strong.headers["retry-after"] == "1"
    assert strong.headers["content-type"] == "application/problem+json"
    assert strong.json()["type"].endswith("/dependency-unavailable")
    assert re.search(r"did not answer in time \((TimeoutError|DeadlineExceeded)\)",
                     strong.json()["detail"])  # fmt: skip
    assert stale.status_code == 200, stale.text
    assert (stale.json()["balance_cents"], stale.json()["served_by"]) == (42, "replica")


def test_ledger_process_is_the_container_command(ledger: RunningService) -> None:
    """The session ledger runs as `caplab service ledger` and serves its OpenAPI document."""
    command = ledger.process.args
    assert isinstance(command, list)
    assert command[-3:] == ["caplab", "service", "ledger"]
    document = httpx.get(ledger.url + "/openapi.json").json()
    assert "/v1/transfers" in document["paths"]
