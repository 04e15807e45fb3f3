"""Create :data:`caplab.core.topology.TOPOLOGY` in the running emulators, idempotently.

Each ``ensure_*`` has the same signature (service URLs for push endpoints, topology, project)
so every emulator spec names its own, and creates only what is missing: a second
``caplab emulators up`` is a no-op.
Clients are built inside the caller's environment: the ``*_EMULATOR_HOST`` variables must be
set (``emulators.manager`` exports them around the call).

Push endpoints point at the services' local URLs (``caplab serve``'s ports) unless the caller
passes other base URLs — the test suite does, for services it starts on free ports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from caplab.core.catalogue import local_service_urls
from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY, Topology, push_endpoint

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database

_EMULATOR_INSTANCE_CONFIG = "emulator-config"


def ensure_spanner(
    service_urls: Mapping[str, str] | None = None,
    topology: Topology = TOPOLOGY,
    project: str = LOCAL_PROJECT,
) -> Database:
    """The Spanner instance and database, with every migration of the topology applied in
    order. Each migration runs as one schema update whose operation id is the migration's
    id: Spanner answers ``ALREADY_EXISTS`` for an id it has run, so applied migrations are
    skipped and a migration appended since the last run is applied (the cloud's database
    gets the same statements, in the same order, through the Pulumi program)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import spanner

    client = spanner.Client(project=project)
    declared = topology.spanner
    instance = client.instance(
        declared.instance,
        configuration_name=f"projects/{project}/instanceConfigs/{_EMULATOR_INSTANCE_CONFIG}",
        display_name=declared.instance,
        node_count=1,
    )
    if not instance.exists():
        with contextlib.suppress(AlreadyExists):
            instance.create().result(timeout=30)
    database = instance.database(declared.database)
    if not database.exists():
        with contextlib.suppress(AlreadyExists):
            database.create().result(timeout=60)
    for migration in declared.migrations:
        with contextlib.suppress(AlreadyExists):
            database.update_ddl(list(migration.statements), operation_id=migration.id).result(
                timeout=60
            )
    database.reload()
    return database


def ensure_pubsub(
    service_urls: Mapping[str, str] | None = None,
    topology: Topology = TOPOLOGY,
    project: str = LOCAL_PROJECT,
) -> None:
    """Topics, dead-letter topics (each with a pull subscription that keeps what lands
    there) and push subscriptions; a subscription whose push endpoint
    moved is re-created (its undelivered messages are dropped: a local-only concern, since
    the cloud's subscriptions are Pulumi's)."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2
    from google.pubsub_v1 import types as pubsub_types

    urls = service_urls or local_service_urls()
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    for topic in topology.all_topics():
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=publisher.topic_path(project, topic))
    for held in topology.dead_letter_subscriptions():
        with contextlib.suppress(AlreadyExists):
            subscriber.create_subscription(
                request=pubsub_types.Subscription(
                    name=subscriber.subscription_path(project, held.name),
                    topic=publisher.topic_path(project, held.topic),
                    message_retention_duration=duration_pb2.Duration(
                        seconds=held.retention_seconds
                    ),
                )
            )
    for declared in topology.subscriptions:
        push_config = pubsub_types.PushConfig(push_endpoint=push_endpoint(declared, urls))
        subscription = pubsub_types.Subscription(
            name=subscriber.subscription_path(project, declared.name),
            topic=publisher.topic_path(project, declared.topic),
            push_config=push_config,
            ack_deadline_seconds=declared.ack_deadline_seconds,
            enable_message_ordering=declared.enable_message_ordering,
            dead_letter_policy=pubsub_types.DeadLetterPolicy(
                dead_letter_topic=publisher.topic_path(project, declared.dead_letter_topic),
                max_delivery_attempts=declared.max_delivery_attempts,
            ),
            retry_policy=pubsub_types.RetryPolicy(
                minimum_backoff=duration_pb2.Duration(
                    seconds=declared.retry.minimum_backoff_seconds
                ),
                maximum_backoff=duration_pb2.Duration(
                    seconds=declared.retry.maximum_backoff_seconds
                ),
            ),
        )
        try:
            subscriber.create_subscription(request=subscription)
        except AlreadyExists:
            current = subscriber.get_subscription(request={"subscription": subscription.name})
            if current.push_config.push_endpoint != push_config.push_endpoint:
                # The emulator accepts UpdateSubscription but keeps pushing to the old
                # endpoint; only a re-created subscription follows a service that moved.
                subscriber.delete_subscription(request={"subscription": subscription.name})
                subscriber.create_subscription(request=subscription)


def ensure_bigtable(
    service_urls: Mapping[str, str] | None = None,
    topology: Topology = TOPOLOGY,
    project: str = LOCAL_PROJECT,
) -> None:
    """Tables and column families with their GC rules (stored, never applied, by the
    emulator)."""
    from google.cloud import bigtable
    from google.cloud.bigtable import column_family

    client = bigtable.Client(project=project, admin=True)
    instance = client.instance(topology.bigtable.instance)
    existing = {table.table_id for table in instance.list_tables()}
    for declared in topology.bigtable.tables:
        table = instance.table(declared.name)
        if declared.name not in existing:
            table.create()
        families = table.list_column_families()
        for family_id, rule in declared.column_families.items():
            if family_id in families:
                continue
            rules: list[column_family.GarbageCollectionRule] = []
            if rule.max_versions is not None:
                rules.append(column_family.MaxVersionsGCRule(rule.max_versions))
            if rule.max_age_seconds is not None:
                import datetime

                rules.append(
                    column_family.MaxAgeGCRule(datetime.timedelta(seconds=rule.max_age_seconds))
                )
            gc_rule = rules[0] if len(rules) == 1 else column_family.GCRuleUnion(rules)
            table.column_family(family_id, gc_rule=gc_rule).create()


TASKS_LOCATION = "us-central1"


def tasks_location_path(project: str = LOCAL_PROJECT) -> str:
    return f"projects/{project}/locations/{TASKS_LOCATION}"


def ensure_tasks(
    service_urls: Mapping[str, str] | None = None,
    topology: Topology = TOPOLOGY,
    project: str = LOCAL_PROJECT,
) -> None:
    """The topology's Cloud Tasks queues with their rate limits and retry policy; an existing
    queue is updated to the declared settings."""
    import os
    from datetime import timedelta

    from google.api_core.exceptions import AlreadyExists
    from google.cloud import tasks_v2
    from google.protobuf import field_mask_pb2

    from caplab.core.clients import build_tasks_client

    parent = tasks_location_path(project)
    with build_tasks_client(os.environ.get("CLOUD_TASKS_EMULATOR_HOST")) as client:
        for declared in topology.queues:
            retry = declared.retry
            queue = tasks_v2.Queue(
                name=f"{parent}/queues/{declared.name}",
                rate_limits=tasks_v2.RateLimits(
                    max_dispatches_per_second=declared.max_dispatches_per_second,
                    max_concurrent_dispatches=declared.max_concurrent_dispatches,
                ),
                retry_config=tasks_v2.RetryConfig(
                    max_attempts=retry.max_attempts,
                    min_backoff=timedelta(seconds=retry.min_backoff_seconds),
                    max_backoff=timedelta(seconds=retry.max_backoff_seconds),
                    max_doublings=retry.max_doublings,
                    max_retry_duration=timedelta(seconds=retry.max_retry_duration_seconds),
                ),
            )
            try:
                client.create_queue(parent=parent, queue=queue)
            except AlreadyExists:
                client.update_queue(
                    queue=queue,
                    update_mask=field_mask_pb2.FieldMask(paths=["rate_limits", "retry_config"]),
                )
