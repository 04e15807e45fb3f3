"""The activity service with Bigtable out of reach: its reads answer 503 problem+json at its
own deadline, and read the feed again once Bigtable is back."""

from __future__ import annotations

import httpx

from caplab.core.clients import ClientFactory
from caplab.core.environment import GcpSettings, config_from
from emulators import manager
from services.activity import projection
from tests.fixtures.fanout import transfer_event, unique
from tests.fixtures.services import OUTAGE_CLIENT_TIMEOUT, OUTAGE_DEADLINE, ServiceRunner
from tests.fixtures.tcp_link import tcp_link


def _project_one(service_environ: dict[str, str], source: str, target: str) -> str:
    """Write one transfer's rows straight into the shared Bigtable; its transfer id."""
    event = transfer_event(source, target, 5, from_version=2, to_version=2)
    with manager.exported(service_environ):
        clients = ClientFactory(GcpSettings.from_config(config_from(service_environ)))
        projection.project(clients.bigtable_table(projection.TABLE), event)
    return event.transfer_id


def test_reads_answer_503_at_the_deadline_while_bigtable_is_cut_and_recover_after(
    services: ServiceRunner, service_environ: dict[str, str]
) -> None:
    """The activity service reaches Bigtable through a link that turns into a black hole
    (connected, never answered: only a deadline ends a call into it). A feed read answers
    503 problem+json with ``Retry-After``, cut by the service's own deadline (the problem
    names the deadline's ``TimeoutError``, not a client library's error), within
    ``OUTAGE_CLIENT_TIMEOUT``. Once the link is released the same process reads the feed
    again, row included."""
    payer, payee = unique("acct"), unique("acct")
    transfer_id = _project_one(service_environ, payer, payee)
    with tcp_link(service_environ["BIGTABLE_EMULATOR_HOST"]) as bigtable:
        env = {
            "BIGTABLE_EMULATOR_HOST": bigtable.address,
            "CAPLAB_ACTIVITY_DEADLINE": OUTAGE_DEADLINE,
        }
        with (
            services.restartable("activity", env) as activity,
            httpx.Client(base_url=activity.url, timeout=OUTAGE_CLIENT_TIMEOUT) as http,
        ):
            feed = f"/v1/accounts/{payee}/activity"
            bigtable.hold_at(b"")
            cut = http.get(feed)
            assert bigtable.wait_held(timeout=0), "the read never reached the Bigtable link"
            bigtable.release()
            healed = http.get(feed)
    assert cut.status_code == 503, cut.text
    assert cut.headers["content-type"] == "application/problem+json"
    assert cut.headers["retry-after"] == "1"
    assert cut.json()["detail"] == "a dependency did not answer in time (TimeoutError)"
    assert healed.status_code == 200, healed.text
    assert [item["transfer_id"] for item in healed.json()["items"]] == [transfer_id]
