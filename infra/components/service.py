"""A Cloud Run (v2) service, its own service account and its callers' identities.

Each service runs as a dedicated service account (never the default compute one). A service
that receives Pub/Sub pushes gets a push identity; one that receives Cloud Tasks deliveries
gets a tasks identity. Those identities, and the members the stack names, are the only
``run.invoker`` grants; ``allUsers`` only when the service is declared public.

The identities (:class:`ServiceIdentities`) come first, so the data stores can grant them
their roles before the service exists; the service itself is created after what it reads and
writes (``after``), so its first revision starts against a database it may already use.

Probes: Cloud Run reserves some paths ending in ``z`` on the public URL
(https://cloud.google.com/run/docs/known-issues), but its probes reach the container
directly, so they keep ``/readyz`` and ``/healthz``; people use ``/ready`` and ``/health``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from caplab.core.catalogue import Service as DeployedService

INVOKER_ROLE = "roles/run.invoker"
STARTUP_PROBE_TIMEOUT_SECONDS = 4
"""Above the readiness check's own budget (``services.shared.app``: 2 s for, e.g., Spanner's
``SELECT 1``), so a slow but successful check is not cut off by the probe."""
STARTUP_PROBE_PERIOD_SECONDS = 5
STARTUP_PROBE_FAILURES = 24
"""Two minutes to become ready (Cloud Run allows a startup probe up to 240 s)."""
PUBLIC_LABEL = "caplab-public-api"
"""Label marking the one service allowed an ``allUsers`` invoker (the policy pack reads it)."""


@dataclass
class ServiceIdentitiesArgs:
    project: pulumi.Input[str]
    service: DeployedService
    receives_pushes: bool = False


@dataclass
class CloudRunServiceArgs:
    project: pulumi.Input[str]
    region: pulumi.Input[str]
    service: DeployedService
    identities: ServiceIdentities
    image: pulumi.Input[str]
    args: pulumi.Input[Sequence[str] | None]
    """Container arguments selecting the service; None keeps the image's own command."""
    env: Mapping[str, pulumi.Input[str]]
    min_instances: int
    max_instances: int
    deletion_protection: bool
    public: bool = False
    invokers: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Extra IAM members allowed to call the service."""
    probes: pulumi.Input[bool] = True
    """HTTP start-up and liveness probes on ``/readyz`` and ``/healthz`` (off for the
    placeholder image, which has neither)."""
    after: Sequence[pulumi.Resource] = field(default_factory=list)
    """What the service uses and must exist first: its database, tables, topics, queues and
    the grants that let it use them."""


def _account(
    name: str,
    account_id: str,
    display_name: str,
    project: pulumi.Input[str],
    parent: pulumi.Resource,
) -> gcp.serviceaccount.Account:
    return gcp.serviceaccount.Account(
        name,
        gcp.serviceaccount.AccountArgs(
            project=project, account_id=account_id, display_name=display_name
        ),
        pulumi.ResourceOptions(parent=parent),
    )


def run_url(
    service: str, project_number: pulumi.Input[str], region: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The deterministic URL of the caplab Cloud Run service ``service``
    (``https://<name>-<project number>.<region>.run.app``)."""
    return pulumi.Output.concat(
        "https://caplab-", service, "-", project_number, ".", region, ".run.app"
    )


def member(account: gcp.serviceaccount.Account) -> pulumi.Output[str]:
    return pulumi.Output.concat("serviceAccount:", account.email)


class ServiceIdentities(pulumi.ComponentResource):
    """The accounts of one service: the one it runs as, the one Pub/Sub pushes to it as
    (when it receives pushes) and the one Cloud Tasks delivers to it as (when it handles
    queues)."""

    def __init__(
        self, name: str, args: ServiceIdentitiesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:ServiceIdentities", name, None, opts)
        self._name = name
        declared = args.service
        self.account = _account(
            name, declared.account_id, f"caplab {declared.name} service", args.project, self
        )
        self.member = member(self.account)
        self.push_identity = (
            _account(
                f"{name}-push",
                f"caplab-push-{declared.name}",
                f"Pub/Sub pushes to caplab {declared.name}",
                args.project,
                self,
            )
            if args.receives_pushes
            else None
        )
        self.tasks_identity = (
            _account(
                f"{name}-tasks",
                f"caplab-tasks-{declared.name}",
                f"Cloud Tasks deliveries to caplab {declared.name}",
                args.project,
                self,
            )
            if declared.handles_queues
            else None
        )
        self.register_outputs({"service_account": self.account.email})

    def push_required(self) -> gcp.serviceaccount.Account:
        """The push identity; only for a service created with ``receives_pushes``."""
        if self.push_identity is None:
            raise ValueError(f"{self._name} receives no pushes")
        return self.push_identity

    def tasks_required(self) -> gcp.serviceaccount.Account:
        """The tasks identity; only for a service that handles queues."""
        if self.tasks_identity is None:
            raise ValueError(f"{self._name} handles no queues")
        return self.tasks_identity


class CloudRunService(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: CloudRunServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:CloudRunService", name, None, opts)
        declared = args.service
        identities = args.identities
        self.account = identities.account
        self.push_identity = identities.push_identity
        self.tasks_identity = identities.tasks_identity
        child = pulumi.ResourceOptions(parent=self)
        env = dict(args.env)
        if self.push_identity is not None:
            env["CAPLAB_PUSH_AUDIENCE"] = declared.audience
            env["CAPLAB_PUSH_SERVICE_ACCOUNT"] = self.push_identity.email
        if self.tasks_identity is not None:
            # Verifying deliveries (the caller must be the tasks identity) and creating tasks
            # that carry it: the one task handler today is also the one enqueuer.
            env["CAPLAB_TASKS_INVOKER_AUDIENCE"] = declared.audience
            env["CAPLAB_TASKS_INVOKER_SERVICE_ACCOUNT"] = self.tasks_identity.email
            env["CAPLAB_TASKS_AUDIENCE"] = declared.audience
            env["CAPLAB_TASKS_SERVICE_ACCOUNT"] = self.tasks_identity.email
        self.service = gcp.cloudrunv2.Service(
            name,
            gcp.cloudrunv2.ServiceArgs(
                project=args.project,
                location=args.region,
                name=f"caplab-{declared.name}",
                ingress="INGRESS_TRAFFIC_ALL"
                if declared.external
                else "INGRESS_TRAFFIC_INTERNAL_ONLY",
                custom_audiences=[declared.audience],
                deletion_protection=args.deletion_protection,
                labels={"caplab-service": declared.name}
                | ({PUBLIC_LABEL: "true"} if args.public else {}),
                template=self._template(args, env),
            ),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.uri = self.service.uri
        callers: list[pulumi.Input[str]] = [
            member(identity)
            for identity in (self.push_identity, self.tasks_identity)
            if identity is not None
        ]
        callers += list(args.invokers)
        if args.public:
            callers.append("allUsers")
        self.invoker_grants = [
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invoker-{index}",
                gcp.cloudrunv2.ServiceIamMemberArgs(
                    project=args.project,
                    location=args.region,
                    name=self.service.name,
                    role=INVOKER_ROLE,
                    member=caller,
                ),
                child,
            )
            for index, caller in enumerate(callers)
        ]
        self.register_outputs({"uri": self.uri, "service_account": self.account.email})

    def _template(
        self, args: CloudRunServiceArgs, env: Mapping[str, pulumi.Input[str]]
    ) -> gcp.cloudrunv2.ServiceTemplateArgs:
        always_on = args.service.always_on
        probes = pulumi.Output.from_input(args.probes)
        return gcp.cloudrunv2.ServiceTemplateArgs(
            service_account=self.account.email,
            scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(
                # The relay polls the outbox: one instance, always there; more would only
                # race for the same rows.
                min_instance_count=1 if always_on else args.min_instances,
                max_instance_count=1 if always_on else args.max_instances,
            ),
            containers=[
                gcp.cloudrunv2.ServiceTemplateContainerArgs(
                    image=args.image,
                    args=args.args,
                    envs=[
                        gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=key, value=value)
                        for key, value in sorted(env.items())
                    ],
                    resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                        # CPU outside requests: a worker that is never requested must still run.
                        cpu_idle=not always_on,
                        limits={"cpu": "1", "memory": "512Mi"},
                    ),
                    startup_probe=probes.apply(lambda on: _startup_probe() if on else None),
                    liveness_probe=probes.apply(lambda on: _liveness_probe() if on else None),
                )
            ],
        )


def _startup_probe() -> gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs:
    """Ready once ``/readyz`` (the service's own dependency check) answers 200."""
    return gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
        http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(path="/readyz"),
        timeout_seconds=STARTUP_PROBE_TIMEOUT_SECONDS,
        period_seconds=STARTUP_PROBE_PERIOD_SECONDS,
        failure_threshold=STARTUP_PROBE_FAILURES,
    )


def _liveness_probe() -> gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeArgs:
    """Restarted when ``/healthz`` (the process answers) fails three times in a row."""
    return gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
        http_get=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(path="/healthz"),
        timeout_seconds=STARTUP_PROBE_TIMEOUT_SECONDS,
        period_seconds=30,
    )
