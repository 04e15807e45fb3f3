"""What a first ``pulumi up`` on a new project needs beyond valid resources: the order the
engine creates them in (from the dependencies each registration declares, recorded by the
mock monitor), the Pub/Sub service agent, probes that outlast the readiness check, and
Bigtable writes and read-your-writes reads on one routing."""

from __future__ import annotations

import inspect

import pytest

from caplab.core import catalogue
from caplab.core.topology import TOPOLOGY
from infra.offline import MockedStack, Recorded
from services.shared.app import create_app

RUN = "gcp:cloudrunv2/service:Service"
API = "gcp:projects/service:Service"
AGENT = "gcp:projects/serviceIdentity:ServiceIdentity"


def urns(mocked: MockedStack, token: str, name: str | None = None) -> set[str]:
    return {r.urn for r in mocked.of_type(token) if name is None or r.name == name}


def test_every_resource_waits_for_every_api(mocked: MockedStack) -> None:
    """Nothing is created before the APIs are enabled (directly, or through its component)."""
    apis = urns(mocked, API)
    assert len(apis) > 5
    early = [
        r.type + "::" + r.name
        for r in mocked.resources
        if r.type != API and not r.type.startswith("caplab:") and not apis <= mocked.waits_for(r)
    ]
    assert early == []


def _direct(mocked: MockedStack, name: str) -> frozenset[str]:
    return mocked.named(RUN, name).dependencies


def test_services_are_created_after_what_they_use_and_their_grants(mocked: MockedStack) -> None:
    """Each Cloud Run service names as dependencies the data it uses and the grants that let
    it: the Spanner database and its IAM for the Spanner users, the Bigtable instance,
    tables, profiles and IAM for activity, the queues with enqueue and act-as grants for the
    task users, and every topic and subscription for the services that publish."""
    database = urns(mocked, "gcp:spanner/database:Database")
    spanner_grants = urns(mocked, "gcp:spanner/databaseIAMMember:DatabaseIAMMember")
    bigtable = urns(mocked, "gcp:bigtable/instance:Instance") | urns(
        mocked, "gcp:bigtable/instanceIamMember:InstanceIamMember"
    )
    bigtable |= urns(mocked, "gcp:bigtable/table:Table")
    bigtable |= urns(mocked, "gcp:bigtable/appProfile:AppProfile")
    queues = urns(mocked, "gcp:cloudtasks/queue:Queue") | urns(
        mocked, "gcp:cloudtasks/queueIamMember:QueueIamMember"
    )
    subscriptions = urns(mocked, "gcp:pubsub/subscription:Subscription")
    for declared in catalogue.DEPLOYED:
        direct = _direct(mocked, declared.name)
        assert (database | spanner_grants <= direct) is declared.spanner, declared.name
        assert (bigtable <= direct) is declared.bigtable, declared.name
        assert (queues <= direct) is bool(declared.enqueues or declared.handles_queues)
    # The relay publishes: every subscription exists before its first event.
    assert subscriptions <= _direct(mocked, "relay")


def test_the_pubsub_agent_is_created_and_may_mint_push_tokens(mocked: MockedStack) -> None:
    """The agent comes from ``ServiceIdentity`` (so it exists on a new project before the
    dead-letter grants use it) and holds ``serviceAccountTokenCreator`` on each push
    identity, and on nothing else."""
    (agent,) = mocked.of_type(AGENT)
    assert agent.inputs["service"] == "pubsub.googleapis.com"
    member = agent.outputs["member"]
    agent_grants: list[Recorded] = [r for r in mocked.resources if r.inputs.get("member") == member]
    assert agent_grants
    assert all(agent.urn in r.dependencies for r in agent_grants)
    tokens = {
        r.inputs["serviceAccountId"].rsplit("/", 1)[-1].split("@")[0]
        for r in agent_grants
        if r.inputs.get("role") == "roles/iam.serviceAccountTokenCreator"
    }
    assert tokens == {f"caplab-push-{name}" for name in catalogue.push_targets()}


def test_startup_probes_outlast_the_readiness_check(built_dev: MockedStack) -> None:
    """The probe waits longer than ``/readyz`` may take (its default budget in the app
    factory), never longer than its period (Cloud Run's rule), and the whole start-up stays
    within Cloud Run's 240 s."""
    budget = inspect.signature(create_app).parameters["readiness_timeout"].default
    for declared in catalogue.DEPLOYED:
        container = built_dev.named(RUN, declared.name).inputs["template"]["containers"][0]
        startup = container["startupProbe"]
        assert startup["timeoutSeconds"] > budget
        assert startup["timeoutSeconds"] <= startup["periodSeconds"]
        assert startup["periodSeconds"] * startup["failureThreshold"] <= 240
        assert container["livenessProbe"]["timeoutSeconds"] > budget


def test_activity_writes_where_read_your_writes_reads(
    mocked_stacks: dict[str, MockedStack],
) -> None:
    """Activity is told to write through the profile its read-your-writes reads use, and
    that profile routes to one cluster (the first), in both stacks; eventual reads keep the
    multi-cluster profile."""
    profile = TOPOLOGY.bigtable.app_profiles["read-your-writes"]
    for mocked in mocked_stacks.values():
        container = mocked.named(RUN, "activity").inputs["template"]["containers"][0]
        env = {item["name"]: item["value"] for item in container["envs"]}
        assert env["CAPLAB_ACTIVITY_APP_PROFILE"] == profile
        routed = mocked.named("gcp:bigtable/appProfile:AppProfile", f"activity-{profile}")
        instance = mocked.named("gcp:bigtable/instance:Instance", "activity").inputs
        assert (
            routed.inputs["singleClusterRouting"]["clusterId"]
            == (instance["clusters"][0]["clusterId"])
        )


def test_the_activity_service_writes_through_the_profile_it_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The setting the program passes picks the writer's app profile, read-your-writes
    reads share that table, and eventual reads keep the multi-cluster profile (clients are
    built against an unused emulator address: nothing is sent)."""
    from caplab.core.clients import ClientFactory
    from services.activity.app import ActivitySettings, tables

    monkeypatch.setenv("BIGTABLE_EMULATOR_HOST", "127.0.0.1:9")
    default = ActivitySettings.from_environ({})
    assert default.app_profile == TOPOLOGY.bigtable.app_profiles["read-your-writes"]
    settings = ActivitySettings.from_environ({"CAPLAB_ACTIVITY_APP_PROFILE": "home"})
    writer, readers = tables(ClientFactory(settings.gcp), settings)
    assert writer._app_profile_id == "home"
    assert readers["read-your-writes"] is writer
    assert readers["eventual"]._app_profile_id == TOPOLOGY.bigtable.app_profiles["eventual"]
