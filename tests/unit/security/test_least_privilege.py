"""Least privilege, as declared: Spanner database roles per service (DDL), what the Pulumi
program hands each service (role, caller audience), and which services could ever be public.

The emulator has no fine-grained access control (tests/e2e/security/test_spanner_roles.py
shows it refusing ``CREATE ROLE``), so the grants are checked here as data and under Pulumi's
mocks, not enforced by a database.
"""

from __future__ import annotations

import importlib

import pytest
from fastapi.routing import APIRoute

from caplab.core import catalogue
from caplab.core.clients import ClientFactory
from caplab.core.environment import GcpSettings, config_from
from caplab.core.topology import TOPOLOGY
from infra.offline import MockedStack
from tests.fixtures.security import granted


def test_each_spanner_service_has_its_own_role_and_no_other_role_exists() -> None:
    spanner_services = {s.database_role for s in catalogue.DEPLOYED if s.spanner}
    assert (
        set(TOPOLOGY.spanner.database_roles())
        == spanner_services
        == {
            "ledger",
            "relay",
            "notifier",
        }
    )


def test_grants_name_declared_tables_only() -> None:
    tables = set(TOPOLOGY.spanner.table_names())
    for role, grants in granted().items():
        assert set(grants) <= tables, role


def test_the_relay_and_the_notifier_touch_one_table_each() -> None:
    """The relay reads and stamps the Outbox and holds its lease, nothing else; the
    internet-facing notifier reads and writes webhook registrations only (it cannot touch a
    balance)."""
    roles = granted()
    assert roles["relay"] == {
        "Outbox": {"SELECT", "UPDATE"},
        "RelayLease": {"SELECT", "INSERT", "UPDATE"},
    }
    assert roles["notifier"] == {"Webhooks": {"SELECT", "INSERT", "UPDATE", "DELETE"}}
    assert "Webhooks" not in roles["ledger"]
    assert "DELETE" not in set().union(*roles["ledger"].values())
    assert roles["ledger"]["Outbox"] == {"INSERT"}


def test_each_grant_follows_its_role_and_tables_and_the_emulator_gets_none() -> None:
    """Every GRANT comes after the role and the tables it names (migrations only append), and
    the emulator's share of the DDL holds no role or grant."""
    tables: set[str] = set()
    roles: set[str] = set()
    grants = 0
    for statement in TOPOLOGY.spanner.ddl:
        words = statement.split()
        if words[:2] == ["CREATE", "TABLE"]:
            tables.add(words[2])
        elif words[:2] == ["CREATE", "ROLE"]:
            roles.add(words[2])
        elif words[0] == "GRANT":
            named = statement.split(" ON TABLE ", 1)[1].split(" TO ROLE ")
            assert {t.strip() for t in named[0].split(",")} <= tables, statement
            assert named[1].strip() in roles, statement
            grants += 1
    assert grants >= 4
    schema = TOPOLOGY.spanner.schema()
    assert not any("ROLE" in statement for statement in schema)
    assert len(schema) + len(TOPOLOGY.spanner.access_control()) == len(TOPOLOGY.spanner.ddl)


def test_the_client_factory_uses_the_configured_role(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CAPLAB_SPANNER_DATABASE_ROLE`` reaches the Spanner database object (its sessions
    carry it); unset, no role is used."""
    monkeypatch.setenv("SPANNER_EMULATOR_HOST", "127.0.0.1:9")  # no credentials lookup
    with_role = GcpSettings.from_config(config_from({"CAPLAB_SPANNER_DATABASE_ROLE": "notifier"}))
    assert ClientFactory(with_role).spanner_database.database_role == "notifier"
    without = GcpSettings.from_config(config_from({}))
    assert ClientFactory(without).spanner_database.database_role is None


def container_env(mocked: MockedStack, service: str) -> dict[str, str]:
    resource = mocked.named("gcp:cloudrunv2/service:Service", service)
    (container,) = resource.inputs["template"]["containers"]
    return {env["name"]: env["value"] for env in container["envs"]}


def test_the_program_gives_each_service_its_role_and_the_ledger_its_audiences(
    mocked: MockedStack,
) -> None:
    for declared in catalogue.DEPLOYED:
        env = container_env(mocked, declared.name)
        assert env.get("CAPLAB_SPANNER_DATABASE_ROLE") == declared.database_role
    ledger_url = mocked.exports["service_urls"]["ledger"]
    assert container_env(mocked, "ledger")["CAPLAB_CALLER_AUDIENCE"] == (
        f"caplab-ledger,{ledger_url}"
    )


@pytest.mark.parametrize("name", [s.name for s in catalogue.DEPLOYED if s.read_only_api])
def test_a_read_only_api_only_reads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every route of a service the catalogue lets be public is a GET, except its push and
    task endpoints, which check their own token (and refuse to start unconfigured on Cloud
    Run)."""
    for variable in ("SPANNER", "PUBSUB", "BIGTABLE"):
        monkeypatch.setenv(f"{variable}_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", "127.0.0.1:9")
    module, factory = catalogue.service(name).factory.split(":")
    app = getattr(importlib.import_module(module), factory)()
    token_checked = {s.path for s in TOPOLOGY.subscriptions if s.service == name}
    writes = {
        route.path
        for route in app.routes
        if isinstance(route, APIRoute) and route.methods - {"GET", "HEAD"}
    }
    assert writes <= token_checked
    assert not catalogue.service(name).handles_queues
