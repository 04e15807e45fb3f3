"""Requests generated from each deployed service's own OpenAPI document never make it answer
5xx: over a thousand cases in all, spread over every operation of the ledger, the notifier,
the activity service and the relay.

Cases are drawn per operation with schemathesis's Hypothesis strategies and sent over HTTP
to service processes (schemathesis' pytest loader does not run under this pytest version,
so the loop over operations is written out here). The processes are private to this test
and kept from reaching anything outside 127.0.0.0/8:

- they use a Spanner database of their own (same schema), so nothing they store reaches
  the session's services (a generated webhook is never delivered by them);
- their own task targets, and the ledger's bank, are ``127.0.0.1:9`` (nothing listens): a
  payout or a delivery the cases schedule is never carried out;
- the notifier's delivery endpoint checks tokens (none is generated, so it refuses);
- generated webhook URLs keep their path, query and port but get an address literal as
  host (loopback, or one the policy refuses), because a generated name would be resolved
  through the machine's DNS server, which is not on loopback.
"""

from __future__ import annotations

import dataclasses
import random
import re
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from caplab.core.topology import TOPOLOGY
from caplab.local import launcher
from emulators import bootstrap, manager
from tests.fixtures.services import ServiceRunner

EXAMPLES_PER_OPERATION = 100
MINIMUM_CASES = 1000
NOWHERE = "http://127.0.0.1:9"
HOSTS = ("127.0.0.1:8089", "hook:pw@127.0.0.1", "10.1.2.3", "[::1]:9", "169.254.169.254")
_AUTHORITY = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)")


@pytest.fixture(scope="module")
def fuzz_database(stack: manager.StackConfig) -> Iterator[str]:
    """A database of its own on the emulator, bootstrapped as the session's one is."""
    name = f"fuzz-{uuid.uuid4().hex[:10]}"
    topology = dataclasses.replace(
        TOPOLOGY, spanner=dataclasses.replace(TOPOLOGY.spanner, database=name)
    )
    with manager.exported(manager.client_environment(stack)):
        database = bootstrap.ensure_spanner(topology=topology)
    try:
        yield name
    finally:
        database.drop()


@pytest.fixture(scope="module")
def targets(services: ServiceRunner, fuzz_database: str) -> Iterator[dict[str, str]]:
    common = {"CAPLAB_SPANNER_DATABASE": fuzz_database}
    own = {
        # A bank nobody serves mounts the payout routes; their tasks go nowhere either.
        "ledger": {"CAPLAB_LEDGER_URL": NOWHERE, "CAPLAB_BANK_URL": NOWHERE},
        "notifier": {
            "CAPLAB_NOTIFIER_URL": NOWHERE,
            "CAPLAB_TASKS_INVOKER_AUDIENCE": "caplab-notifier",
            "CAPLAB_TASKS_INVOKER_CERTS_URL": NOWHERE + "/certs",
        },
        "activity": {},
        "relay": {},
    }
    # Started together, then awaited: the four start-ups overlap.
    running = {
        name: launcher.start(
            name,
            port := manager.free_port(),
            dict(services.environ, **common, **env),
            log_path=services.log_dir / f"fuzz-{name}-{port}.log",
        )
        for name, env in own.items()
    }
    try:
        for service in running.values():
            launcher.wait_ready(service)
        yield {name: service.url for name, service in running.items()}
    finally:
        for service in running.values():
            launcher.stop(service)


def literal_hosts(case: schemathesis.Case, rng: random.Random) -> None:
    """Give any generated URL in the body an address literal as its host."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("url"), str):
        body["url"] = _AUTHORITY.sub(lambda m: m[1] + rng.choice(HOSTS), body["url"])


def test_generated_requests_never_get_a_server_error(targets: dict[str, str]) -> None:
    """Any generated request (valid or not) to any operation of any deployed service answers
    below 500."""
    server_errors: list[str] = []
    sent: dict[str, int] = {}
    rng = random.Random(13)

    def fuzz(operation: APIOperation, base: str, label: str) -> None:
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(case=operation.as_strategy())
        def send(case: schemathesis.Case) -> None:
            literal_hosts(case, rng)
            response = case.call(base_url=base, timeout=30)
            sent[label] += 1
            if response.status_code >= 500:
                server_errors.append(
                    f"{label}: {case.method} {case.formatted_path} -> "
                    f"{response.status_code} {response.text[:200]}"
                )

        send()

    for name, url in targets.items():
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result
            operation = result.ok()
            label = f"{name} {operation.label}"
            sent[label] = 0
            fuzz(operation, url, label)
    assert server_errors == []
    assert {label.split()[0] for label in sent} == set(targets)
    assert sum(sent.values()) >= MINIMUM_CASES, sent
