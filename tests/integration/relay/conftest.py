"""Relay parts wired to the session's emulators, in process: the shared transaction runner,
the relay's reads, leases under a name of the test's own, and a private topic with a pull
subscription to publish to (so nothing reaches the session's consumers)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from services.relay.lease import Lease
from services.relay.pacing import Backoff
from services.relay.reads import Reads
from services.relay.sessions import RelayDatabase
from services.shared.transactions import TransactionRunner, TransactionSettings

MakeLease = Callable[..., Lease]


@pytest.fixture
def database(emulator_env: dict[str, str]) -> Any:
    from google.cloud import spanner

    client = spanner.Client(project=LOCAL_PROJECT)
    return RelayDatabase(TOPOLOGY.spanner.database, client.instance(TOPOLOGY.spanner.instance))


@pytest.fixture
def runner(database: Any) -> TransactionRunner:
    return TransactionRunner(database, timedelta(seconds=30), TransactionSettings(max_concurrent=1))


@pytest.fixture
def reads(database: Any) -> Iterator[Reads]:
    reads = Reads(database, timeout=5.0)
    yield reads
    reads.close()


@pytest.fixture
def make_lease(runner: TransactionRunner, reads: Reads) -> MakeLease:
    """``make_lease(holder, duration)``: a lease keeper on a lease name of this test's own."""
    name = f"test-{uuid.uuid4().hex[:12]}"

    def make(holder: str, duration: float) -> Lease:
        return Lease(runner, reads, holder, duration, Backoff(0.05, 0.2), name=name)

    return make


@pytest.fixture
def topic(emulator_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A private topic and a pull subscription on it: ``(topic_path, subscription_path)``."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    suffix = uuid.uuid4().hex[:10]
    topic_path = publisher.topic_path(LOCAL_PROJECT, f"relay-test-{suffix}")
    subscription_path = subscriber.subscription_path(LOCAL_PROJECT, f"relay-test-{suffix}")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=subscription_path, topic=topic_path)
    try:
        yield topic_path, subscription_path
    finally:
        subscriber.delete_subscription(subscription=subscription_path)
        publisher.delete_topic(topic=topic_path)
        subscriber.close()


@pytest.fixture
def publisher(emulator_env: dict[str, str]) -> Any:
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
