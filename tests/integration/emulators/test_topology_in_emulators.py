"""Through the official clients, each emulator holds exactly the declared topology."""

from __future__ import annotations

from caplab.core import catalogue
from caplab.core.catalogue import local_service_urls
from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY, push_endpoint
from emulators import bootstrap, manager


def _spanner_objects() -> tuple[set[str], set[str]]:
    from google.cloud import spanner

    database = (
        spanner.Client(project=LOCAL_PROJECT)
        .instance(TOPOLOGY.spanner.instance)
        .database(TOPOLOGY.spanner.database)
    )
    with database.snapshot(multi_use=True) as snapshot:
        tables = {
            row[0]
            for row in snapshot.execute_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ''"
            )
        }
        indexes = {
            row[0]
            for row in snapshot.execute_sql(
                "SELECT index_name FROM information_schema.indexes "
                "WHERE table_schema = '' AND index_type = 'INDEX'"
            )
        }
    return tables, indexes


def test_spanner_holds_exactly_the_declared_tables_and_indexes(
    emulator_env: dict[str, str],
) -> None:
    """The database has the topology's tables and secondary indexes, and nothing else."""
    tables, indexes = _spanner_objects()
    assert tables == set(TOPOLOGY.spanner.table_names())
    assert indexes == set(TOPOLOGY.spanner.index_names())


def test_pubsub_holds_exactly_the_declared_topics_and_subscriptions(
    emulator_env: dict[str, str],
) -> None:
    """Topics (with dead-letter topics) and push subscriptions match the declaration."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    project = f"projects/{LOCAL_PROJECT}"
    topics = {t.name.rsplit("/", 1)[1] for t in publisher.list_topics(request={"project": project})}
    assert topics == set(TOPOLOGY.all_topics())
    subscriptions = {
        s.name.rsplit("/", 1)[1]: s
        for s in subscriber.list_subscriptions(request={"project": project})
    }
    held = {s.name: s for s in TOPOLOGY.dead_letter_subscriptions()}
    assert subscriptions.keys() == {s.name for s in TOPOLOGY.subscriptions} | held.keys()
    for name, declared_pull in held.items():
        assert subscriptions[name].topic.endswith(f"/topics/{declared_pull.topic}")
        assert subscriptions[name].push_config.push_endpoint == ""
    for declared in TOPOLOGY.subscriptions:
        actual = subscriptions[declared.name]
        assert actual.topic.endswith(f"/topics/{declared.topic}")
        # The host part moves with the services (e2e tests point it at their own ports).
        assert actual.push_config.push_endpoint.endswith(declared.path)
        assert actual.dead_letter_policy.dead_letter_topic.endswith(declared.dead_letter_topic)
        assert actual.dead_letter_policy.max_delivery_attempts == declared.max_delivery_attempts
        assert actual.enable_message_ordering == declared.enable_message_ordering


def test_bigtable_holds_exactly_the_declared_tables_families_and_gc_rules(
    emulator_env: dict[str, str],
) -> None:
    """Tables and column families exist with the declared GC rules (stored, not applied)."""
    from google.cloud import bigtable

    instance = bigtable.Client(project=LOCAL_PROJECT, admin=True).instance(
        TOPOLOGY.bigtable.instance
    )
    assert {t.table_id for t in instance.list_tables()} == {
        t.name for t in TOPOLOGY.bigtable.tables
    }
    for declared in TOPOLOGY.bigtable.tables:
        families = instance.table(declared.name).list_column_families()
        assert families.keys() == declared.column_families.keys()
        for family_id, rule in declared.column_families.items():
            assert families[family_id].gc_rule.to_pb().max_num_versions == (rule.max_versions or 0)


def test_second_up_is_a_no_op(stack: manager.StackConfig, emulator_env: dict[str, str]) -> None:
    """`up` on a healthy stack starts nothing and leaves the topology as it was."""
    before = _spanner_objects()
    result = manager.up(stack)
    assert result.started == []
    assert sorted(result.already_running) == sorted(s.name for s in stack.emulators)
    assert _spanner_objects() == before


def test_push_endpoints_follow_the_services(
    stack: manager.StackConfig, emulator_env: dict[str, str]
) -> None:
    """Re-bootstrapping with other service URLs moves the push endpoints (tests rely on it)."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    moved = {name: f"http://127.0.0.1:{59000 + i}" for i, name in enumerate(catalogue.NAMES)}
    try:
        bootstrap.ensure_pubsub(moved)
        for declared in TOPOLOGY.subscriptions:
            path = subscriber.subscription_path(LOCAL_PROJECT, declared.name)
            actual = subscriber.get_subscription(request={"subscription": path})
            assert actual.push_config.push_endpoint == push_endpoint(declared, moved)
    finally:
        bootstrap.ensure_pubsub(local_service_urls())
