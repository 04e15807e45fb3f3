"""The cloud and the laptop declare one topology: the Pulumi program (under mocks), the
topology module and the bootstrapped emulators are reduced to the same comparable view, and
the three views must be equal. Adding a topic, table, family, GC rule, queue or DDL object
on one side only fails here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY, is_access_control
from emulators import bootstrap
from infra.offline import MockedStack

View = dict[str, Any]


def _ddl_object(statement: str) -> str:
    words = statement.split()
    return words[2] if words[:2] != ["CREATE", "UNIQUE"] else words[3]


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def topology_view() -> View:
    return {
        "spanner": (
            TOPOLOGY.spanner.instance,
            TOPOLOGY.spanner.database,
            frozenset(_ddl_object(s) for s in TOPOLOGY.spanner.schema()),
        ),
        "topics": frozenset(TOPOLOGY.all_topics()),
        "subscriptions": {
            s.name: (
                s.topic,
                s.path,
                s.dead_letter_topic,
                s.max_delivery_attempts,
                s.enable_message_ordering,
                s.ack_deadline_seconds,
                (s.retry.minimum_backoff_seconds, s.retry.maximum_backoff_seconds),
            )
            for s in TOPOLOGY.subscriptions
        },
        "dead_letter_subscriptions": {
            s.name: (s.topic, s.retention_seconds) for s in TOPOLOGY.dead_letter_subscriptions()
        },
        "bigtable": (
            TOPOLOGY.bigtable.instance,
            {
                t.name: {
                    f: (r.max_versions, r.max_age_seconds) for f, r in t.column_families.items()
                }
                for t in TOPOLOGY.bigtable.tables
            },
        ),
        "queues": {
            q.name: (
                q.max_dispatches_per_second,
                q.max_concurrent_dispatches,
                q.retry.max_attempts,
                q.retry.min_backoff_seconds,
                q.retry.max_backoff_seconds,
                q.retry.max_doublings,
            )
            for q in TOPOLOGY.queues
        },
    }


def infra_view(mocked: MockedStack) -> View:
    database = mocked.named("gcp:spanner/database:Database", "ledger").inputs
    gc: dict[str, dict[str, tuple[int | None, int | None]]] = {}
    for policy in mocked.of_type("gcp:bigtable/gCPolicy:GCPolicy"):
        props = policy.inputs
        versions = props.get("maxVersions")
        age = props.get("maxAge")
        gc.setdefault(props["table"], {})[props["columnFamily"]] = (
            int(versions[0]["number"]) if versions else None,
            int(_seconds(age["duration"])) if age else None,
        )
    tables = {
        r.inputs["name"]: {f["family"] for f in r.inputs["columnFamilies"]}
        for r in mocked.of_type("gcp:bigtable/table:Table")
    }
    assert {t: set(families) for t, families in gc.items()} == tables, "families without GC"
    return {
        "spanner": (
            database["instance"],
            database["name"],
            frozenset(_ddl_object(s) for s in database["ddls"] if not is_access_control(s)),
        ),
        "topics": frozenset(r.inputs["name"] for r in mocked.of_type("gcp:pubsub/topic:Topic")),
        "subscriptions": {
            s["name"]: (
                s["topic"].rsplit("/", 1)[-1],
                urlparse(s["pushConfig"]["pushEndpoint"]).path,
                s["deadLetterPolicy"]["deadLetterTopic"].rsplit("/", 1)[-1],
                int(s["deadLetterPolicy"]["maxDeliveryAttempts"]),
                s.get("enableMessageOrdering", False),
                int(s["ackDeadlineSeconds"]),
                (
                    int(_seconds(s["retryPolicy"]["minimumBackoff"])),
                    int(_seconds(s["retryPolicy"]["maximumBackoff"])),
                ),
            )
            for s in (r.inputs for r in mocked.of_type("gcp:pubsub/subscription:Subscription"))
            if "pushConfig" in s
        },
        "dead_letter_subscriptions": {
            s["name"]: (s["topic"].rsplit("/", 1)[-1], int(_seconds(s["messageRetentionDuration"])))
            for s in (r.inputs for r in mocked.of_type("gcp:pubsub/subscription:Subscription"))
            if "pushConfig" not in s
        },
        "bigtable": (
            mocked.named("gcp:bigtable/instance:Instance", "activity").inputs["name"],
            gc,
        ),
        "queues": {
            q["name"]: (
                q["rateLimits"]["maxDispatchesPerSecond"],
                int(q["rateLimits"]["maxConcurrentDispatches"]),
                int(q["retryConfig"]["maxAttempts"]),
                _seconds(q["retryConfig"]["minBackoff"]),
                _seconds(q["retryConfig"]["maxBackoff"]),
                int(q["retryConfig"]["maxDoublings"]),
            )
            for q in (r.inputs for r in mocked.of_type("gcp:cloudtasks/queue:Queue"))
        },
    }


def _delta_seconds(value: timedelta | Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else value.seconds


def emulator_view() -> View:
    import os

    from google.cloud import bigtable, pubsub_v1, spanner

    from caplab.core.clients import build_tasks_client

    database = (
        spanner.Client(project=LOCAL_PROJECT)
        .instance(TOPOLOGY.spanner.instance)
        .database(TOPOLOGY.spanner.database)
    )
    database.reload()
    project = f"projects/{LOCAL_PROJECT}"
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    subscriptions = list(subscriber.list_subscriptions(request={"project": project}))
    instance = bigtable.Client(project=LOCAL_PROJECT, admin=True).instance(
        TOPOLOGY.bigtable.instance
    )
    tables: dict[str, dict[str, tuple[int | None, int | None]]] = {}
    for table in instance.list_tables():
        families = {}
        for family_id, family in table.list_column_families().items():
            rule = family.gc_rule.to_pb()
            families[family_id] = (
                rule.max_num_versions or None,
                int(rule.max_age.seconds) or None,
            )
        tables[table.table_id] = families
    with build_tasks_client(os.environ["CLOUD_TASKS_EMULATOR_HOST"]) as tasks:
        queues = {
            q.name.rsplit("/", 1)[-1]: (
                q.rate_limits.max_dispatches_per_second,
                q.rate_limits.max_concurrent_dispatches,
                q.retry_config.max_attempts,
                _delta_seconds(q.retry_config.min_backoff),
                _delta_seconds(q.retry_config.max_backoff),
                q.retry_config.max_doublings,
            )
            for q in tasks.list_queues(parent=bootstrap.tasks_location_path(LOCAL_PROJECT))
        }
    return {
        "spanner": (
            TOPOLOGY.spanner.instance if database.exists() else None,
            database.database_id,
            frozenset(_ddl_object(s) for s in database.ddl_statements),
        ),
        "topics": frozenset(
            t.name.rsplit("/", 1)[-1] for t in publisher.list_topics(request={"project": project})
        ),
        "subscriptions": {
            s.name.rsplit("/", 1)[-1]: (
                s.topic.rsplit("/", 1)[-1],
                urlparse(s.push_config.push_endpoint).path,
                s.dead_letter_policy.dead_letter_topic.rsplit("/", 1)[-1],
                s.dead_letter_policy.max_delivery_attempts,
                s.enable_message_ordering,
                s.ack_deadline_seconds,
                (
                    int(_delta_seconds(s.retry_policy.minimum_backoff)),
                    int(_delta_seconds(s.retry_policy.maximum_backoff)),
                ),
            )
            for s in subscriptions
            if s.push_config.push_endpoint
        },
        "dead_letter_subscriptions": {
            s.name.rsplit("/", 1)[-1]: (
                s.topic.rsplit("/", 1)[-1],
                int(_delta_seconds(s.message_retention_duration)),
            )
            for s in subscriptions
            if not s.push_config.push_endpoint
        },
        "bigtable": (TOPOLOGY.bigtable.instance, tables),
        "queues": queues,
    }


def test_infra_topology_and_emulators_declare_the_same_topology(
    emulator_env: dict[str, str], mocked_stacks: dict[str, MockedStack]
) -> None:
    """Topics, subscriptions (topic, path, dead letter, attempts, ordering, deadline, backoff),
    Spanner DDL objects (tables and indexes: the emulator has no roles or grants), Bigtable
    tables/families/GC rules and queues (limits, retries) are the same in both stacks of the
    program, in the topology and in the emulators."""
    declared = topology_view()
    assert infra_view(mocked_stacks["dev"]) == declared
    assert infra_view(mocked_stacks["prod"]) == declared
    assert emulator_view() == declared
