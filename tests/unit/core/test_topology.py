"""The topology is one typed, self-consistent declaration that imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys

from caplab.core import catalogue
from caplab.core.catalogue import local_service_urls
from caplab.core.topology import TOPOLOGY, Migration, SpannerDatabase, push_endpoint


def test_importing_the_topology_pulls_in_no_client_library_or_pulumi() -> None:
    """caplab.core.topology is data: importing it must not import Pulumi or a Google client."""
    code = (
        "import sys, caplab.core.topology; "
        "print(sorted(m for m in sys.modules if m.startswith(('pulumi', 'google'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_subscription_reads_a_declared_topic_and_has_its_own_dead_letter_topic() -> None:
    """Each push subscription names a declared topic and a dead-letter topic of its own."""
    dead_letters = [s.dead_letter_topic for s in TOPOLOGY.subscriptions]
    assert len(set(dead_letters)) == len(dead_letters)
    for subscription in TOPOLOGY.subscriptions:
        assert subscription.topic in TOPOLOGY.topics
        assert subscription.service in catalogue.NAMES
        assert subscription.path.startswith("/")
        assert subscription.max_delivery_attempts >= 5  # Pub/Sub's minimum
    assert set(TOPOLOGY.all_topics()) == set(TOPOLOGY.topics) | set(dead_letters)


def test_names_are_unique() -> None:
    """No two subscriptions, queues, tables or service ports share a name or port."""
    for names in (
        [s.name for s in TOPOLOGY.subscriptions],
        [q.name for q in TOPOLOGY.queues],
        [t.name for t in TOPOLOGY.bigtable.tables],
        [s.port for s in catalogue.SERVICES],
    ):
        assert len(set(names)) == len(names)


def test_ddl_declares_the_ledger_tables() -> None:
    """The Spanner DDL declares the four ledger tables the design names."""
    assert {"Accounts", "Transfers", "IdempotencyKeys", "Outbox"} <= set(
        TOPOLOGY.spanner.table_names()
    )


def test_push_endpoints_resolve_per_environment() -> None:
    """A subscription's endpoint is its service's base URL plus its path, locally or not."""
    subscription = TOPOLOGY.subscription("activity-projector")
    assert (
        push_endpoint(subscription, local_service_urls())
        == f"http://127.0.0.1:{catalogue.service('activity').port}/pubsub/transfer-events"
    )
    cloud = {"activity": "https://activity-abc-uc.a.run.app/"}
    assert push_endpoint(subscription, cloud) == (
        "https://activity-abc-uc.a.run.app/pubsub/transfer-events"
    )


def test_queues_have_valid_retry_and_rate_settings() -> None:
    """Queue settings stay inside Cloud Tasks' documented limits."""
    for queue in TOPOLOGY.queues:
        assert 0 < queue.max_dispatches_per_second <= 500
        assert 0 < queue.max_concurrent_dispatches <= 5000
        assert queue.retry.max_attempts >= -1
        assert queue.retry.min_backoff_seconds <= queue.retry.max_backoff_seconds


def test_the_indexes_left_in_place_account_for_later_drops() -> None:
    """An index a later migration drops is no longer declared."""
    database = SpannerDatabase(
        instance="i",
        database="d",
        migrations=(
            Migration("m1", ("CREATE TABLE T (K INT64) PRIMARY KEY (K)", "CREATE INDEX A ON T(K)")),
            Migration("m2", ("CREATE UNIQUE INDEX B ON T (K)", "DROP INDEX A")),
        ),
    )
    assert database.index_names() == ("B",)
    assert "OutboxPending" in TOPOLOGY.spanner.index_names()
