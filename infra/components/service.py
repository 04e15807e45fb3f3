"""A Cloud Run (v2) service with its own service account and its callers' identities.

Each service runs as a dedicated service account (never the default compute one). A service
that receives Pub/Sub pushes gets a push identity; one that receives Cloud Tasks deliveries
gets a tasks identity. Those identities, and the members the stack names, are the only
``run.invoker`` grants; ``allUsers`` only when the service is declared public.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from caplab.core.catalogue import Service as DeployedService

INVOKER_ROLE = "roles/run.invoker"
PUBLIC_LABEL = "caplab-public-api"
"""Label marking the one service allowed an ``allUsers`` invoker (the policy pack reads it)."""


@dataclass
class CloudRunServiceArgs:
    project: pulumi.Input[str]
    region: pulumi.Input[str]
    service: DeployedService
    image: pulumi.Input[str]
    args: Sequence[str] | None
    """Container arguments selecting the service; None keeps the image's own command."""
    env: Mapping[str, pulumi.Input[str]]
    min_instances: int
    max_instances: int
    deletion_protection: bool
    public: bool = False
    invokers: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Extra IAM members allowed to call the service."""
    receives_pushes: bool = False
    probes: bool = True
    """HTTP start-up and liveness probes on ``/readyz`` and ``/healthz`` (off for the
    placeholder image, which has neither)."""


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


class CloudRunService(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: CloudRunServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:CloudRunService", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
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
            child,
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

    def push_email_required(self) -> pulumi.Output[str]:
        """The push identity's email; only for a service created with ``receives_pushes``."""
        if self.push_identity is None:
            raise ValueError(f"{self._name} receives no pushes")
        return self.push_identity.email

    def _template(
        self, args: CloudRunServiceArgs, env: Mapping[str, pulumi.Input[str]]
    ) -> gcp.cloudrunv2.ServiceTemplateArgs:
        always_on = args.service.always_on
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
                    args=list(args.args) if args.args is not None else None,
                    envs=[
                        gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=key, value=value)
                        for key, value in sorted(env.items())
                    ],
                    resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                        # CPU outside requests: a worker that is never requested must still run.
                        cpu_idle=not always_on,
                        limits={"cpu": "1", "memory": "512Mi"},
                    ),
                    startup_probe=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                        http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(
                            path="/readyz"
                        ),
                        period_seconds=2,
                        failure_threshold=30,
                    )
                    if args.probes
                    else None,
                    liveness_probe=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
                        http_get=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(
                            path="/healthz"
                        ),
                        period_seconds=30,
                    )
                    if args.probes
                    else None,
                )
            ],
        )
