"""The ledger process across lifecycles: its own (SIGTERM with a request in flight) and its
database's (the Spanner emulator stopped and started again under it)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators import manager
from emulators.specs import by_name
from tests.e2e.ledger.conftest import (
    OpenAccount,
    open_account_with,
    transfer,
    transfer_held_at_spanner,
)
from tests.fixtures.fanout import eventually
from tests.fixtures.services import ServiceRunner, listening

SPANNER = by_name("spanner")


DRAINING = "Waiting for connections to close"
"""What uvicorn logs once it has stopped listening and waits for the requests in flight."""


def test_sigterm_finishes_the_request_in_flight_then_ends_by_that_signal(
    services: ServiceRunner,
    service_environ: dict[str, str],
    client: httpx.Client,
    open_account: OpenAccount,
) -> None:
    """A transfer is held at the ledger's link to Spanner (its key's read is on the wire), so
    it is in flight by construction when SIGTERM arrives. The link is released only once the
    ledger reports it is draining (it has stopped listening: new connections are refused), so
    the transfer ends during the drain; the ledger finishes it: the client gets its 201 and
    the money moved. Then the process ends by the SIGTERM it was sent, which uvicorn re-raises
    once the drain is over (a supervisor sees "terminated by SIGTERM", never a crash's
    status)."""
    source, target = open_account(1000), open_account(0)
    key = uuid.uuid4().hex
    spanner_host = service_environ["SPANNER_EMULATOR_HOST"]
    with transfer_held_at_spanner(services, spanner_host, source, target, 10, key) as held:
        draining = held.ledger
        os.killpg(draining.process.pid, signal.SIGTERM)
        eventually(lambda: draining.log_tail().count(DRAINING) or None)
        assert not listening(draining.port)
        held.spanner.release()
        answer = held.in_flight.result()
        status = draining.process.wait(30)
    assert answer.status_code == 201, answer.text
    assert status == -signal.SIGTERM, draining.log_tail()
    replay = transfer(client, source, target, 10, key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == answer.json()
    assert client.get(f"/v1/accounts/{source}").json()["balance_cents"] == 990


@pytest.fixture
def own_spanner(tmp_path: Path) -> Iterator[manager.StackConfig]:
    """A Spanner emulator of this test's own (bootstrapped), which it may stop and start."""
    environ = dict(os.environ, CAPLAB_HOME=str(tmp_path / "home"))
    config = manager.StackConfig.from_environ(
        environ, port_overrides=manager.free_ports((SPANNER,)), emulators=(SPANNER,)
    )
    try:
        manager.up(config)
        yield config
    finally:
        manager.down(config)


def test_the_ledger_serves_again_once_its_restarted_spanner_emulator_is_back(
    services: ServiceRunner, own_spanner: manager.StackConfig
) -> None:
    """The same ledger process, never restarted: it serves, its Spanner emulator is stopped
    (reads and transfers then answer 503 problem+json, never 500), started again on the same
    port and bootstrapped (the emulator keeps nothing across a restart, so the database is new
    and empty). It then serves again without a restart of its own: until its connection is
    back (gRPC reconnects with back-off) an account create answers 503 problem+json, never
    anything else; once one succeeds, a transfer commits and reads show the new balances
    and versions."""
    address = own_spanner.address(SPANNER)
    env = {"SPANNER_EMULATOR_HOST": address, "CAPLAB_LEDGER_DEADLINE": "2s"}
    with (
        services.restartable("ledger", env) as ledger,
        httpx.Client(base_url=ledger.url, timeout=30) as http,
    ):
        before, other = open_account_with(http, 100), open_account_with(http, 0)
        assert transfer(http, before, other, 1).status_code == 201

        manager.down(own_spanner)
        for down in (http.get(f"/v1/accounts/{before}"), transfer(http, before, other, 1)):
            assert down.status_code == 503, down.text
            assert down.headers["content-type"] == "application/problem+json"

        manager.up(own_spanner)
        source = f"acct-{uuid.uuid4().hex[:12]}"

        def created() -> httpx.Response | None:
            answer = http.post(
                "/v1/accounts", json={"id": source, "owner": "tester", "balance_cents": 1000}
            )
            if answer.status_code == 503:
                assert answer.headers["content-type"] == "application/problem+json"
                return None
            return answer

        # 200 (an identical repeat) when a create that timed out did commit after all.
        account = eventually(created, timeout=60)
        assert account.status_code in (200, 201), account.text
        assert (account.json()["balance_cents"], account.json()["version"]) == (1000, 1)
        target = open_account_with(http, 0)
        moved = transfer(http, source, target, 250)
        assert moved.status_code == 201, moved.text
        snapshot = http.get("/v1/snapshot", params={"accounts": f"{source},{target}"})
        assert snapshot.status_code == 200, snapshot.text
        gone = http.get(f"/v1/accounts/{before}")
    assert [(a["balance_cents"], a["version"]) for a in snapshot.json()["accounts"]] == [
        (750, 2),
        (250, 2),
    ]
    assert gone.status_code == 404, gone.text
