"""caplab in a Google Cloud project: ``pulumi up`` from this directory.

Reads the stack's configuration and the topology, then wires the components: APIs first,
then the image repository, the Cloud Run services (each with its own identities), the data
stores and queues with grants for exactly the services that use them, and the Pub/Sub
fan-out pushing to the services' URLs.
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
from infra.components.queues import TaskQueues, TaskQueuesArgs, TaskTarget
from infra.components.registry import ImageRepository, ImageRepositoryArgs
from infra.components.service import CloudRunService, CloudRunServiceArgs, run_url
from infra.components.spanner import LedgerDatabase, LedgerDatabaseArgs
from infra.settings import StackSettings

settings = StackSettings.from_config(pulumi.Config(), pulumi.Config("gcp"))
project = settings.project
apis = ProjectApis("apis", ProjectApisArgs(project=project))
after_apis = pulumi.ResourceOptions(depends_on=[apis])
# The project lookup needs the Resource Manager API: wait for it like every resource does.
project_number = gcp.organizations.get_project_output(
    project_id=project, opts=pulumi.InvokeOutputOptions(depends_on=[apis])
).number

images = ImageRepository(
    "images", ImageRepositoryArgs(project=project, region=settings.region), after_apis
)

environment: dict[str, pulumi.Input[str]] = dict(resource_environment(project, settings.region))
push_targets = catalogue.push_targets()
own_environment: dict[str, dict[str, pulumi.Input[str]]] = {
    # Task handlers put their own URL in the tasks they create; the deterministic Cloud Run
    # URL is known before the service exists.
    "notifier": {"CAPLAB_NOTIFIER_URL": run_url("notifier", project_number, settings.region)},
    "ledger": {
        "CAPLAB_LEDGER_URL": run_url("ledger", project_number, settings.region),
        # The ledger verifies its callers' ID tokens itself: its custom audience, or its URL
        # (the audience `caplab load --target` asks for).
        "CAPLAB_CALLER_AUDIENCE": pulumi.Output.concat(
            catalogue.deployed("ledger").audience,
            ",",
            run_url("ledger", project_number, settings.region),
        ),
    },
}
# Each Spanner service connects with its own database role (fine-grained access control).
for row in catalogue.DEPLOYED:
    if row.database_role is not None:
        own_environment.setdefault(row.name, {})["CAPLAB_SPANNER_DATABASE_ROLE"] = row.database_role
services = {
    declared.name: CloudRunService(
        declared.name,
        CloudRunServiceArgs(
            project=project,
            region=settings.region,
            service=declared,
            image=settings.container_image,
            args=["service", declared.name] if settings.image else None,
            env=environment | own_environment.get(declared.name, {}),
            min_instances=settings.min_instances,
            max_instances=settings.max_instances,
            deletion_protection=settings.deletion_protection,
            public=declared.read_only_api and settings.public_api,
            invokers=list(settings.invokers) if declared.external else [],
            receives_pushes=declared.name in push_targets,
            probes=settings.image is not None,
        ),
        after_apis,
    )
    for declared in catalogue.DEPLOYED
}


def members_where(predicate: catalogue.Predicate) -> list[pulumi.Input[str]]:
    """The service accounts of the deployed services ``predicate`` selects."""
    return [services[s.name].member for s in catalogue.DEPLOYED if predicate(s)]


def task_target(handler: catalogue.Service) -> TaskTarget:
    """Who Cloud Tasks claims to be when delivering to ``handler``, and who may create its
    tasks (every service enqueueing into one of its queues)."""
    receiver = services[handler.name]
    if receiver.tasks_identity is None:
        raise ValueError(f"{handler.name} handles queues but has no tasks identity")
    return TaskTarget(
        identity_id=receiver.tasks_identity.name,
        identity_email=receiver.tasks_identity.email,
        audience=handler.audience,
        creators=[services[s.name].member for s in catalogue.enqueuers_of(handler)],
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
        role_users={
            s.database_role: services[s.name].member
            for s in catalogue.DEPLOYED
            if s.database_role is not None
        },
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
        project_number=project_number,
        topology=TOPOLOGY,
        targets={
            name: PushTarget(
                url=services[name].uri,
                audience=catalogue.deployed(name).audience,
                identity_email=services[name].push_email_required(),
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

pulumi.export("service_urls", {name: service.uri for name, service in services.items()})
pulumi.export("image_base", images.image_base)
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
