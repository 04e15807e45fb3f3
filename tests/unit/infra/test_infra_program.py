"""The Pulumi program under mocks: every resource of both stacks and its key properties."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest

from caplab.core import catalogue
from caplab.core.topology import TOPOLOGY
from infra.components.apis import REQUIRED_APIS
from infra.offline import MockedStack, registry_image, run_program
from tests.fixtures.infra import DEV_DIGEST

ROOT = Path(__file__).resolve().parents[3]
RUN = "gcp:cloudrunv2/service:Service"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
ACCOUNT = "gcp:serviceaccount/account:Account"


def env_of(service: Mapping[str, Any]) -> dict[str, str]:
    container = service["template"]["containers"][0]
    return {item["name"]: item["value"] for item in container["envs"]}


def grants_of(mocked: MockedStack, token: str) -> set[tuple[str, str]]:
    return {(r.inputs["role"], r.inputs["member"]) for r in mocked.of_type(token)}


def sa(mocked: MockedStack, account_id: str) -> str:
    project = mocked.named("gcp:projects/service:Service", "run").inputs["project"]
    return f"serviceAccount:{account_id}@{project}.iam.gserviceaccount.com"


def test_every_resource_type_is_declared_in_the_expected_number(mocked: MockedStack) -> None:
    """Both stacks declare the same shape; only sizes, protection and publicity differ."""
    counts = mocked.types()
    assert counts["gcp:projects/service:Service"] == len(REQUIRED_APIS)
    assert counts[RUN] == len(catalogue.DEPLOYED) == 4
    # One runtime identity per service, one push identity per push target, one tasks identity
    # per task handler (the notifier's webhooks, the ledger's payouts), and the load job's.
    assert counts[ACCOUNT] == (
        4 + len(catalogue.push_targets()) + len(catalogue.task_handlers()) + 1
    )
    assert counts["gcp:pubsub/topic:Topic"] == len(TOPOLOGY.all_topics())
    held = len(TOPOLOGY.dead_letter_subscriptions())
    assert counts["gcp:pubsub/subscription:Subscription"] == len(TOPOLOGY.subscriptions) + held
    assert counts["gcp:cloudtasks/queue:Queue"] == len(TOPOLOGY.queues)
    assert counts["gcp:spanner/instance:Instance"] == counts["gcp:spanner/database:Database"] == 1
    assert counts["gcp:bigtable/instance:Instance"] == 1
    assert counts["gcp:bigtable/appProfile:AppProfile"] == len(TOPOLOGY.bigtable.app_profiles)
    assert counts["gcp:artifactregistry/repository:Repository"] == 1


def test_spanner_is_regional_in_dev_and_multi_region_in_prod(
    mocked_stacks: dict[str, MockedStack],
) -> None:
    """Instance config, capacity and deletion protection follow the stack's configuration;
    the database carries the topology's DDL verbatim."""
    expected = {
        "dev": ("regional-us-central1", 100.0, "STANDARD", False),
        "prod": ("nam3", 1000.0, "ENTERPRISE_PLUS", True),
    }
    for stack, (config, units, edition, protected) in expected.items():
        mocked = mocked_stacks[stack]
        instance = mocked.named("gcp:spanner/instance:Instance", "ledger").inputs
        database = mocked.named("gcp:spanner/database:Database", "ledger").inputs
        assert (instance["config"], instance["processingUnits"]) == (config, units)
        assert instance["edition"] == edition
        assert instance["name"] == TOPOLOGY.spanner.instance
        assert database["name"] == TOPOLOGY.spanner.database
        assert database["ddls"] == list(TOPOLOGY.spanner.ddl)
        assert database["versionRetentionPeriod"] == TOPOLOGY.spanner.version_retention
        assert database["deletionProtection"] is protected
        assert database["enableDropProtection"] is protected


def test_bigtable_has_one_cluster_in_dev_and_two_replicated_in_prod(
    mocked_stacks: dict[str, MockedStack],
) -> None:
    """Prod replicates across two zones; app profiles route multi-cluster (eventual) and
    single-cluster to the first cluster (read-your-writes)."""
    for stack, zones in {"dev": ["us-central1-b"], "prod": ["us-central1-b", "us-east1-c"]}.items():
        mocked = mocked_stacks[stack]
        instance = mocked.named("gcp:bigtable/instance:Instance", "activity").inputs
        assert [c["zone"] for c in instance["clusters"]] == zones
        assert instance["deletionProtection"] is (stack == "prod")
        multi = mocked.named("gcp:bigtable/appProfile:AppProfile", "activity-multi-cluster").inputs
        single = mocked.named("gcp:bigtable/appProfile:AppProfile", "activity-single-cluster")
        assert multi["multiClusterRoutingUseAny"] is True
        assert (
            single.inputs["singleClusterRouting"]["clusterId"]
            == instance["clusters"][0]["clusterId"]
        )
        assert "multiClusterRoutingUseAny" not in single.inputs


def test_services_run_the_digest_of_the_stacks_tag_with_their_environment(
    built_dev: MockedStack,
) -> None:
    """Once ``services:dev`` exists, each dev service runs that image by digest with
    ``caplab service <name>`` and probes /readyz; every service gets the resource names the
    settings read. The digest is read from the registry at every run, so a later
    ``pulumi up`` keeps it."""
    mocked = built_dev
    image = f"us-central1-docker.pkg.dev/caplab-dev-000000/caplab/services@{DEV_DIGEST}"
    assert mocked.exports["image"] == image
    assert "gcp:artifactregistry/getDockerImages:getDockerImages" in mocked.invokes
    for declared in catalogue.DEPLOYED:
        service = mocked.named(RUN, declared.name).inputs
        container = service["template"]["containers"][0]
        assert container["image"] == image
        assert container["args"] == ["service", declared.name]
        assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
        assert env_of(service) | {
            "GOOGLE_CLOUD_PROJECT": "caplab-dev-000000",
            "CAPLAB_SPANNER_INSTANCE": TOPOLOGY.spanner.instance,
            "CAPLAB_SPANNER_DATABASE": TOPOLOGY.spanner.database,
            "CAPLAB_BIGTABLE_INSTANCE": TOPOLOGY.bigtable.instance,
            "CAPLAB_TASKS_LOCATION": "us-central1",
        } == env_of(service)


def test_task_handler_knows_its_identities_and_own_url(mocked: MockedStack) -> None:
    """The notifier verifies deliveries from the tasks identity, stamps that identity into
    the tasks it creates, and targets its own deterministic URL."""
    env = env_of(mocked.named(RUN, "notifier").inputs)
    identity = sa(mocked, "caplab-tasks-notifier").split(":", 1)[1]
    assert env["CAPLAB_TASKS_INVOKER_SERVICE_ACCOUNT"] == env["CAPLAB_TASKS_SERVICE_ACCOUNT"]
    assert env["CAPLAB_TASKS_SERVICE_ACCOUNT"] == identity
    assert env["CAPLAB_TASKS_AUDIENCE"] == env["CAPLAB_TASKS_INVOKER_AUDIENCE"] == "caplab-notifier"
    assert env["CAPLAB_NOTIFIER_URL"] == mocked.named(RUN, "notifier").outputs["uri"]
    for name in catalogue.push_targets():
        push_env = env_of(mocked.named(RUN, name).inputs)
        assert push_env["CAPLAB_PUSH_AUDIENCE"] == f"caplab-{name}"
        assert push_env["CAPLAB_PUSH_SERVICE_ACCOUNT"].startswith(f"caplab-push-{name}@")


def test_another_stacks_tag_is_not_this_stacks_image() -> None:
    """prod runs what ``services:prod`` names: a ``dev`` tag leaves it on the placeholder."""
    tagged = registry_image("caplab-prod-000000", "us-central1", ["dev"], DEV_DIGEST)
    mocked = run_program("prod", images=[tagged])
    assert mocked.exports["image"] == "us-docker.pkg.dev/cloudrun/container/hello"


def test_placeholder_image_runs_until_the_first_build(mocked: MockedStack) -> None:
    """Before the stack's tag exists the services run Google's sample container with its
    own command and no caplab probes, so the first ``pulumi up`` can succeed before any
    build."""
    for declared in catalogue.DEPLOYED:
        container = mocked.named(RUN, declared.name).inputs["template"]["containers"][0]
        assert container["image"] == "us-docker.pkg.dev/cloudrun/container/hello"
        assert "args" not in container
        assert "startupProbe" not in container


def test_relay_is_always_on_and_request_services_scale_by_config(
    mocked_stacks: dict[str, MockedStack],
) -> None:
    """The relay keeps one instance with CPU always allocated; the others scale between the
    stack's minimum and maximum, with CPU only during requests."""
    for stack, (low, high) in {"dev": (0.0, 3.0), "prod": (1.0, 20.0)}.items():
        for declared in catalogue.DEPLOYED:
            template = mocked_stacks[stack].named(RUN, declared.name).inputs["template"]
            scaling = template["scaling"]
            cpu_idle = template["containers"][0]["resources"]["cpuIdle"]
            if declared.name == "relay":
                assert (scaling["minInstanceCount"], scaling["maxInstanceCount"]) == (1.0, 1.0)
                assert cpu_idle is False
            else:
                assert (scaling["minInstanceCount"], scaling["maxInstanceCount"]) == (low, high)
                assert cpu_idle is True


def test_each_service_runs_as_its_own_account_with_declared_ingress(mocked: MockedStack) -> None:
    """One dedicated service account per service; the relay (no API) takes no traffic from
    outside Google Cloud."""
    accounts = set()
    for declared in catalogue.DEPLOYED:
        service = mocked.named(RUN, declared.name).inputs
        accounts.add(service["template"]["serviceAccount"])
        assert service["template"]["serviceAccount"].startswith(f"caplab-{declared.name}@")
        assert service["customAudiences"] == [declared.audience]
        expected = "INGRESS_TRAFFIC_ALL" if declared.external else "INGRESS_TRAFFIC_INTERNAL_ONLY"
        assert service["ingress"] == expected
    assert len(accounts) == len(catalogue.DEPLOYED)


def test_invokers_are_exactly_the_callers_that_need_them(
    mocked_stacks: dict[str, MockedStack],
) -> None:
    """Pub/Sub's push identities and Cloud Tasks' identity invoke their targets, the load
    job the ledger and the activity service; allUsers invokes the ledger only where
    ``caplab:publicApi`` is on (dev); the relay has no invoker at all."""
    for stack, public in {"dev": True, "prod": False}.items():
        mocked = mocked_stacks[stack]
        invokers: dict[str, set[str]] = {}
        for grant in mocked.of_type(RUN_INVOKER):
            assert grant.inputs["role"] == "roles/run.invoker"
            invokers.setdefault(grant.inputs["name"], set()).add(grant.inputs["member"])
        expected = {
            "caplab-ledger": {
                sa(mocked, "caplab-push-ledger"),
                sa(mocked, "caplab-tasks-ledger"),
                sa(mocked, "caplab-load-job"),
            }
            | ({"allUsers"} if public else set()),
            "caplab-activity": {sa(mocked, "caplab-push-activity"), sa(mocked, "caplab-load-job")},
            "caplab-notifier": {
                sa(mocked, "caplab-push-notifier"),
                sa(mocked, "caplab-tasks-notifier"),
            },
        }
        assert invokers == expected
        labels = mocked.named(RUN, "ledger").inputs["labels"]
        assert (labels.get("caplab-public-api") == "true") is public


def test_push_subscriptions_deliver_with_oidc_to_their_service(mocked: MockedStack) -> None:
    """Each subscription pushes to its service's URL + path with that service's push identity
    and audience, dead-letters after the topology's attempts, and keeps its retry policy."""
    for declared in TOPOLOGY.subscriptions:
        subscription = mocked.named("gcp:pubsub/subscription:Subscription", declared.name).inputs
        service = mocked.named(RUN, declared.service).outputs
        push = subscription["pushConfig"]
        assert push["pushEndpoint"] == service["uri"] + declared.path
        assert push["oidcToken"] == {
            "serviceAccountEmail": sa(mocked, f"caplab-push-{declared.service}").split(":", 1)[1],
            "audience": catalogue.deployed(declared.service).audience,
        }
        assert subscription["topic"].endswith(f"/topics/{declared.topic}")
        assert subscription["deadLetterPolicy"]["deadLetterTopic"].endswith(
            f"/topics/{declared.dead_letter_topic}"
        )
        assert subscription["deadLetterPolicy"]["maxDeliveryAttempts"] == float(
            declared.max_delivery_attempts
        )
        assert subscription["enableMessageOrdering"] is declared.enable_message_ordering
        assert subscription["retryPolicy"] == {
            "minimumBackoff": f"{declared.retry.minimum_backoff_seconds}s",
            "maximumBackoff": f"{declared.retry.maximum_backoff_seconds}s",
        }


def test_pubsub_service_agent_can_dead_letter(mocked: MockedStack) -> None:
    """Pub/Sub's service agent may publish to every dead-letter topic and acknowledge on every
    source subscription; each consumer may publish to its own dead-letter topic (poison
    messages); only the relay publishes events."""
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    topic_grants = {
        (r.inputs["topic"], r.inputs["role"], r.inputs["member"])
        for r in mocked.of_type("gcp:pubsub/topicIAMMember:TopicIAMMember")
    }
    dead_letters = {s.dead_letter_topic for s in TOPOLOGY.subscriptions}
    consumers = {
        (s.dead_letter_topic, "roles/pubsub.publisher", sa(mocked, f"caplab-{s.service}"))
        for s in TOPOLOGY.subscriptions
    }
    assert (
        topic_grants
        == {(t, "roles/pubsub.publisher", agent) for t in dead_letters}
        | {("transfer-events", "roles/pubsub.publisher", sa(mocked, "caplab-relay"))}
        | consumers
    )
    subscription_grants = {
        (r.inputs["subscription"], r.inputs["role"], r.inputs["member"])
        for r in mocked.of_type("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember")
    }
    assert subscription_grants == {
        (s.name, "roles/pubsub.subscriber", agent) for s in TOPOLOGY.subscriptions
    }


def test_queues_carry_rate_limits_retries_and_oidc(mocked: MockedStack) -> None:
    """Each queue has the topology's limits and retry policy and a queue-level OIDC token for
    its handler's tasks identity (webhooks: the notifier; payouts: the ledger, whose saga
    calls the bank from its own task endpoint); each handler may enqueue into its own queue
    and act as that identity, and nobody else may."""
    handlers = {"webhooks": "notifier", "payouts": "ledger"}
    for declared in TOPOLOGY.queues:
        handler = handlers[declared.name]
        queue = mocked.named("gcp:cloudtasks/queue:Queue", declared.name).inputs
        assert queue["rateLimits"] == {
            "maxDispatchesPerSecond": declared.max_dispatches_per_second,
            "maxConcurrentDispatches": declared.max_concurrent_dispatches,
        }
        assert queue["retryConfig"]["maxAttempts"] == declared.retry.max_attempts
        assert queue["retryConfig"]["maxDoublings"] == declared.retry.max_doublings
        assert queue["retryConfig"]["maxBackoff"] == f"{declared.retry.max_backoff_seconds:g}s"
        assert queue["httpTarget"]["oidcToken"] == {
            "serviceAccountEmail": sa(mocked, f"caplab-tasks-{handler}").split(":", 1)[1],
            "audience": f"caplab-{handler}",
        }
    enqueuers = {
        (r.inputs["name"], r.inputs["role"], r.inputs["member"])
        for r in mocked.of_type("gcp:cloudtasks/queueIamMember:QueueIamMember")
    }
    assert enqueuers == {
        (queue, "roles/cloudtasks.enqueuer", sa(mocked, f"caplab-{handler}"))
        for queue, handler in handlers.items()
    }
    act_as = {
        (r.inputs["role"], r.inputs["member"], r.inputs["serviceAccountId"].rsplit("/", 1)[-1])
        for r in mocked.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.serviceAccountUser"
    }
    assert act_as == {
        (
            "roles/iam.serviceAccountUser",
            sa(mocked, f"caplab-{handler}"),
            sa(mocked, f"caplab-tasks-{handler}").split(":", 1)[1],
        )
        for handler in handlers.values()
    }


def test_data_roles_are_granted_on_the_resource_to_its_users_only(mocked: MockedStack) -> None:
    """Spanner: database-level databaseUser for the ledger, the relay and the notifier (its
    webhook registrations); Bigtable: instance-level user for activity. Nothing else."""
    assert grants_of(mocked, "gcp:spanner/databaseIAMMember:DatabaseIAMMember") == {
        ("roles/spanner.databaseUser", sa(mocked, "caplab-ledger")),
        ("roles/spanner.databaseUser", sa(mocked, "caplab-relay")),
        ("roles/spanner.databaseUser", sa(mocked, "caplab-notifier")),
    }
    assert grants_of(mocked, "gcp:bigtable/instanceIamMember:InstanceIamMember") == {
        ("roles/bigtable.user", sa(mocked, "caplab-activity"))
    }
    assert not mocked.of_type("gcp:projects/iAMMember:IAMMember")


def test_exports_are_resolved_values(mocked: MockedStack) -> None:
    """Service URLs, resource ids and the lab's environment come out as plain strings."""
    assert set(mocked.exports["service_urls"]) == {s.name for s in catalogue.DEPLOYED}
    assert all(url.startswith("https://") for url in mocked.exports["service_urls"].values())
    lab = mocked.exports["lab_environment"]
    assert lab["CAPLAB_LEDGER_URL"] == mocked.exports["service_urls"]["ledger"]
    assert lab["CAPLAB_SPANNER_DATABASE"] == TOPOLOGY.spanner.database
    assert set(mocked.exports["queues"]) == {q.name for q in TOPOLOGY.queues}
    assert mocked.exports["image_base"].endswith(
        "-docker.pkg.dev/" + lab["GOOGLE_CLOUD_PROJECT"] + "/caplab/services"
    )


def test_an_error_inside_an_apply_fails_the_run() -> None:
    """The mock runner awaits every output: a failing check inside ``apply`` is raised, not
    lost."""

    def program() -> None:
        pulumi.export("broken", pulumi.Output.from_input("x").apply(lambda _: 1 / 0))

    with pytest.raises(ZeroDivisionError):
        run_program("dev", program=program)


def test_a_missing_config_key_fails_with_its_name() -> None:
    """The stack settings name the missing key before any resource is declared."""
    with pytest.raises(pulumi.ConfigMissingError, match="caplab:spannerConfig"):
        run_program("dev", {"caplab:spannerConfig": None}, program=_settings_only)


def test_min_instances_above_max_is_refused() -> None:
    """An inconsistent scaling range is a configuration error."""
    with pytest.raises(ValueError, match="minInstances"):
        run_program("dev", {"caplab:minInstances": "5"}, program=_settings_only)


def test_multi_region_spanner_requires_enterprise_plus() -> None:
    """A multi-region configuration with the Standard edition is refused before any resource
    is declared (Google would refuse it at create time)."""
    with pytest.raises(ValueError, match="ENTERPRISE_PLUS"):
        run_program("prod", {"caplab:spannerEdition": "STANDARD"}, program=_settings_only)


def _settings_only() -> None:
    from infra.settings import StackSettings

    StackSettings.from_config(pulumi.Config("caplab"), pulumi.Config("gcp"))


def test_stack_files_set_only_documented_keys() -> None:
    """Every ``caplab:*`` key a stack file sets is declared (typed, described) in
    Pulumi.yaml, and both stacks set every declared key that has no default, except the
    image (set by Cloud Build) and the optional invokers."""
    import yaml

    from infra.offline import PROGRAM_DIR, stack_config

    declared = yaml.safe_load((PROGRAM_DIR / "Pulumi.yaml").read_text())["config"]
    assert all({"type", "description"} <= set(spec) for spec in declared.values())
    required = {k for k, spec in declared.items() if "default" not in spec} - {"image", "invokers"}
    for stack in ("dev", "prod"):
        keys = {k.split(":", 1)[1] for k in stack_config(stack) if k.startswith("caplab:")}
        assert keys <= set(declared)
        assert required <= keys


UNDECORATED_TEST = """\
import pulumi


def test_forgot_the_decorator():
    return pulumi.Output.from_input(1).apply(lambda value: value == 2)
"""


def test_a_test_returning_an_unawaited_output_fails_the_suite(tmp_path: Path) -> None:
    """The other silent-pass trap — a test that returns an Output but lacks
    ``@pulumi.runtime.test`` — fails under this project's pytest configuration (warnings are
    errors, and pytest warns about a test returning a value)."""
    test_file = tmp_path / "test_undecorated.py"
    test_file.write_text(UNDECORATED_TEST)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            str(test_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "ReturnNotNone" in result.stdout


def test_no_subscription_expires(mocked: MockedStack) -> None:
    """Pub/Sub deletes a subscription idle for 31 days unless its expiration policy has an
    empty TTL: every push subscription and every dead-letter hold says never."""
    subscriptions = mocked.of_type("gcp:pubsub/subscription:Subscription")
    assert len(subscriptions) == len(TOPOLOGY.subscriptions) + len(
        TOPOLOGY.dead_letter_subscriptions()
    )
    expiring = [s.name for s in subscriptions if s.inputs.get("expirationPolicy") != {"ttl": ""}]
    assert expiring == []
