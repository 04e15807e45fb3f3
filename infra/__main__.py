"""caplab in a Google Cloud project: ``pulumi up`` from this directory.

Reads the stack's configuration and the topology, then wires the components in the order a
first ``pulumi up`` needs: the APIs; each service's identities; the image repository and the
image the stack's tag points to; the data stores, queues and Pub/Sub fan-out, each granting
exactly the identities that use them; and last the Cloud Run services, each created after
what it uses (``after``) so its first revision starts against resources it may already use.
Push subscriptions target the services' deterministic URLs, so they exist before any event
is published.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from caplab.core import catalogue
from caplab.core.environment import resource_environment
from caplab.core.topology import TOPOLOGY
from infra.components.apis import ProjectApis, ProjectApisArgs
from infra.components.bigtable import ActivityStore, ActivityStoreArgs
from infra.components.fanout import EventFanout, EventFanoutArgs, PushTarget
from infra.components.loadjob import LoadJob, LoadJobArgs
from infra.components.queues import TaskQueues, TaskQueuesArgs, TaskTarget
from infra.components.registry import ImageRepository, ImageRepositoryArgs
from infra.components.service import (
    CloudRunService,
    CloudRunServiceArgs,
    ServiceIdentities,
    ServiceIdentitiesArgs,
    run_url,
)
from infra.components.spanner import LedgerDatabase, LedgerDatabaseArgs
from infra.settings import PLACEHOLDER_IMAGE, StackSettings

settings = StackSettings.from_config(pulumi.Config(), pulumi.Config("gcp"))
project = settings.project
apis = ProjectApis("apis", ProjectApisArgs(project=project))
after_apis = pulumi.ResourceOptions(depends_on=[apis])
# The project lookup needs the Resource Manager API: wait for it like every resource does.
project_number = gcp.organizations.get_project_output(
    project_id=project, opts=pulumi.InvokeOutputOptions(depends_on=[apis])
).number
push_targets = catalogue.push_targets()

identities = {
    declared.name: ServiceIdentities(
        declared.name,
        ServiceIdentitiesArgs(
            project=project, service=declared, receives_pushes=declared.name in push_targets
        ),
        after_apis,
    )
    for declared in catalogue.DEPLOYED
}
urls = {s.name: run_url(s.name, project_number, settings.region) for s in catalogue.DEPLOYED}

images = ImageRepository(
    "images", ImageRepositoryArgs(project=project, region=settings.region), after_apis
)
deployed_image = images.deployed(pulumi.get_stack())
"""The digest ``services:<stack>`` points to; None until Cloud Build first tags one."""


def members_where(predicate: catalogue.Predicate) -> list[pulumi.Input[str]]:
    """The service accounts of the deployed services ``predicate`` selects."""
    return [identities[s.name].member for s in catalogue.DEPLOYED if predicate(s)]


def task_target(handler: catalogue.Service) -> TaskTarget:
    """Who Cloud Tasks claims to be when delivering to ``handler``, and who may create its
    tasks (every service enqueueing into one of its queues)."""
    identity = identities[handler.name].tasks_required()
    return TaskTarget(
        identity_id=identity.name,
        identity_email=identity.email,
        audience=handler.audience,
        creators=[identities[s.name].member for s in catalogue.enqueuers_of(handler)],
    )


ledger = LedgerDatabase(
    "ledger",
    LedgerDatabaseArgs(
        project=project,
        declared=TOPOLOGY.spanner,
        instance_config=settings.spanner_config,
        processing_units=settings.spanner_processing_units,
        edition=settings.spanner_edition,
        deletion_protection=settings.deletion_protection,
        users=members_where(lambda s: s.spanner),
    ),
    after_apis,
)
activity = ActivityStore(
    "activity",
    ActivityStoreArgs(
        project=project,
        declared=TOPOLOGY.bigtable,
        zones=settings.bigtable_zones,
        nodes_per_cluster=settings.bigtable_nodes,
        deletion_protection=settings.deletion_protection,
        users=members_where(lambda s: s.bigtable),
    ),
    after_apis,
)
queues = TaskQueues(
    "queues",
    TaskQueuesArgs(
        project=project,
        location=settings.region,
        queues=TOPOLOGY.queues,
        targets={handler.name: task_target(handler) for handler in catalogue.task_handlers()},
        handlers={
            queue.name: catalogue.queue_handler(queue.name).name for queue in TOPOLOGY.queues
        },
        enqueuers={
            queue.name: members_where(lambda s, q=queue.name: q in s.enqueues)
            for queue in TOPOLOGY.queues
        },
    ),
    after_apis,
)
fanout = EventFanout(
    "fanout",
    EventFanoutArgs(
        project=project,
        topology=TOPOLOGY,
        targets={
            name: PushTarget(
                url=urls[name],
                audience=catalogue.deployed(name).audience,
                identity_email=identities[name].push_required().email,
                identity_id=identities[name].push_required().name,
            )
            for name in push_targets
        },
        publishers={
            topic: members_where(lambda s, t=topic: catalogue.publishes_to(s, t))
            for topic in TOPOLOGY.all_topics()
        },
    ),
    after_apis,
)


def used_by(service: catalogue.Service) -> list[pulumi.Resource]:
    """What ``service`` reads or writes, and the grants that let it: created before it."""
    used: list[pulumi.Resource] = []
    if service.spanner:
        used += [ledger.database, *ledger.grants]
    if service.bigtable:
        used += [activity.instance, *activity.tables.values(), *activity.app_profiles]
        used += [*activity.gc_policies, *activity.grants]
    if service.enqueues or service.handles_queues:
        used += [*queues.queues.values(), *queues.grants, *queues.act_as_grants]
    if any(catalogue.publishes_to(service, topic) for topic in TOPOLOGY.all_topics()):
        # Every subscription exists before the first event: Pub/Sub drops what is published
        # to a topic without one.
        used += [*fanout.topics.values(), *fanout.subscriptions.values()]
        used += [*fanout.dead_letter_holds.values(), *fanout.grants]
    return used


own_environment: dict[str, dict[str, pulumi.Input[str]]] = {
    # Task handlers put their own URL in the tasks they create; the deterministic Cloud Run
    # URL is known before the service exists.
    "notifier": {"CAPLAB_NOTIFIER_URL": urls["notifier"]},
    "ledger": {"CAPLAB_LEDGER_URL": urls["ledger"]},
    # Writes and read-your-writes reads through the one single-cluster profile.
    "activity": {"CAPLAB_ACTIVITY_APP_PROFILE": TOPOLOGY.bigtable.app_profiles["read-your-writes"]},
}
environment: dict[str, pulumi.Input[str]] = dict(resource_environment(project, settings.region))
services = {
    declared.name: CloudRunService(
        declared.name,
        CloudRunServiceArgs(
            project=project,
            region=settings.region,
            service=declared,
            identities=identities[declared.name],
            image=deployed_image.apply(lambda ref: ref or PLACEHOLDER_IMAGE),
            args=deployed_image.apply(
                lambda ref, name=declared.name: ["service", name] if ref else None
            ),
            env=environment | own_environment.get(declared.name, {}),
            min_instances=settings.min_instances,
            max_instances=settings.max_instances,
            deletion_protection=settings.deletion_protection,
            public=declared.may_be_public and settings.public_api,
            invokers=list(settings.invokers) if declared.external else [],
            probes=deployed_image.apply(lambda ref: ref is not None),
            after=used_by(declared),
        ),
        after_apis,
    )
    for declared in catalogue.DEPLOYED
}

load_job = LoadJob(
    "load",
    LoadJobArgs(
        project=project,
        region=settings.region,
        image=deployed_image.apply(lambda ref: ref or PLACEHOLDER_IMAGE),
        args=deployed_image.apply(lambda ref: ["load"] if ref else None),
        services=services,
        deletion_protection=settings.deletion_protection,
        operators=list(settings.invokers),
    ),
    after_apis,
)

pulumi.export("service_urls", {name: service.uri for name, service in services.items()})
pulumi.export("load_job", load_job.job.name)
pulumi.export("load_shards", load_job.shard_url)
pulumi.export("image_base", images.image_base)
pulumi.export("image", deployed_image.apply(lambda ref: ref or PLACEHOLDER_IMAGE))
pulumi.export("spanner_database", ledger.database.id)
pulumi.export("bigtable_instance", activity.instance.id)
pulumi.export("topics", {name: topic.id for name, topic in fanout.topics.items()})
pulumi.export("queues", {name: queue.id for name, queue in queues.queues.items()})
pulumi.export(
    "lab_environment",
    {
        **environment,
        "CAPLAB_LEDGER_URL": services["ledger"].uri,
        "CAPLAB_ACTIVITY_URL": services["activity"].uri,
    },
)
