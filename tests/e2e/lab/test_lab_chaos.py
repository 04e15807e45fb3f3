"""``caplab chaos`` between two ledger processes and the Spanner emulator: with the leader
link partitioned, strong reads fail after their deadline instead of answering (CP) while
exact-staleness reads through the replica link keep answering (AP); healing restores both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from caplab.core.timestamps import parse_rfc3339
from caplab.local import partition
from emulators import manager
from tests.fixtures.ledger_clock import wait_for_database_time
from tests.fixtures.services import OUTAGE_CLIENT_TIMEOUT, OUTAGE_DEADLINE, ServiceRunner


@pytest.fixture
def ledgers_behind_links(
    stack: manager.StackConfig, services: ServiceRunner, tmp_path: Path
) -> Iterator[tuple[str, str, str]]:
    """(leader-side ledger URL, replica-side ledger URL, chaos control URL)."""
    spanner = manager.client_environment(stack)["SPANNER_EMULATOR_HOST"]
    with partition.chaos_links(spanner, tmp_path / "chaos.log") as (leader, replica, control):
        env = {"CAPLAB_LEDGER_DEADLINE": OUTAGE_DEADLINE}
        with (
            services.restartable(
                "ledger", dict(env, SPANNER_EMULATOR_HOST=f"127.0.0.1:{leader}")
            ) as leader_ledger,
            services.restartable(
                "ledger", dict(env, SPANNER_EMULATOR_HOST=f"127.0.0.1:{replica}")
            ) as replica_ledger,
        ):
            yield leader_ledger.url, replica_ledger.url, control


def test_partitioned_leader_link_fails_strong_reads_but_not_stale_ones(
    ledgers_behind_links: tuple[str, str, str],
) -> None:
    """CP for strong reads, AP for stale ones — and nothing answers wrong."""
    leader, replica, control = ledgers_behind_links
    account = f"chaos-{uuid.uuid4().hex[:10]}"
    # The strong read's 503 must come from the ledger's deadline: the client gives up soon after.
    with httpx.Client(timeout=OUTAGE_CLIENT_TIMEOUT) as http:
        created = http.post(f"{leader}/v1/accounts",
                            json={"id": account, "owner": "lab", "balance_cents": 500})  # fmt: skip
        assert created.status_code == 201, created.text
        committed = parse_rfc3339(created.json()["commit_timestamp"])
        # on the database's clock, so a 500 ms stale read sees the account
        wait_for_database_time(http, leader, account, committed + timedelta(milliseconds=500))

        assert http.post(f"{control}/links/leader/partition").json()["partitioned"] is True
        strong = http.get(f"{leader}/v1/accounts/{account}", params={"consistency": "strong"})
        stale = http.get(f"{replica}/v1/accounts/{account}",
                         params={"consistency": "exact", "staleness": "500ms"})  # fmt: skip
        links = {link["name"]: link for link in http.get(f"{control}/links").json()}

        assert strong.status_code == 503, strong.text
        assert stale.status_code == 200, stale.text
        assert stale.json()["balance_cents"] == 500
        assert links["leader"]["partitioned"] is True
        assert links["replica"]["partitioned"] is False

        assert http.post(f"{control}/links/leader/heal").json()["partitioned"] is False
        healed = http.get(f"{leader}/v1/accounts/{account}", params={"consistency": "strong"})
        assert healed.status_code == 200, healed.text
        assert healed.json()["version"] == 1
