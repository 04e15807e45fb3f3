"""The load lab as a Cloud Run Job: ``caplab load`` shards in parallel tasks, one report after.

Each task of an execution runs one part of the same seeded plan (Cloud Run sets
``CLOUD_RUN_TASK_INDEX`` / ``CLOUD_RUN_TASK_COUNT``) against the deployed ledger and
activity services, and writes its shard to ``gs://<bucket>/lab-<execution>/``; ``caplab load
merge`` of that prefix builds the one report (docs/deploying.md).

Least privilege:

- the job runs as its own service account (never the default compute one);
- that account may invoke the ledger and the activity service (``roles/run.invoker`` on each
  service, nothing project-wide) and create objects in the shard bucket
  (``roles/storage.objectCreator``: it can neither read, overwrite nor delete a shard);
- the bucket has uniform access, public access prevention enforced, and deletes shards after
  ``retention_days``;
- the stack's ``invokers`` (the people allowed to load-test) may read the shards
  (``roles/storage.objectViewer`` on this bucket only). Running the job with overrides needs
  ``roles/run.developer`` on it, granted outside the program (docs/deploying.md).

Tasks are never retried (``max_retries=0``): a retried task would replay its part off
schedule; the merge instead names a missing part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra.components.service import INVOKER_ROLE, CloudRunService, member

JOB_NAME = "caplab-load"
ACCOUNT_ID = "caplab-load-job"
SHARD_WRITER_ROLE = "roles/storage.objectCreator"
SHARD_READER_ROLE = "roles/storage.objectViewer"
TARGETS = ("ledger", "activity")
"""The services a load task calls."""


@dataclass
class LoadJobArgs:
    project: pulumi.Input[str]
    region: pulumi.Input[str]
    image: pulumi.Input[str]
    args: pulumi.Input[Sequence[str] | None]
    """``["load"]``; None while the stack still runs the placeholder image."""
    services: Mapping[str, CloudRunService]
    """The deployed services by name; the job invokes those in :data:`TARGETS`."""
    deletion_protection: bool
    task_count: int = 20
    parallelism: int = 20
    task_timeout: str = "3600s"
    retention_days: int = 30
    operators: Sequence[pulumi.Input[str]] = field(default_factory=list)


class LoadJob(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: LoadJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:LoadJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = gcp.serviceaccount.Account(
            name,
            gcp.serviceaccount.AccountArgs(
                project=args.project, account_id=ACCOUNT_ID, display_name="caplab load job"
            ),
            child,
        )
        self.member = member(self.account)
        self.bucket = gcp.storage.Bucket(
            f"{name}-shards",
            gcp.storage.BucketArgs(
                project=args.project,
                name=pulumi.Output.concat(args.project, "-caplab-load"),
                location=args.region,
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                force_destroy=not args.deletion_protection,
                lifecycle_rules=[
                    gcp.storage.BucketLifecycleRuleArgs(
                        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                        condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                            age=args.retention_days
                        ),
                    )
                ],
                labels={"caplab-purpose": "load-shards"},
            ),
            child,
        )
        self.shard_url = pulumi.Output.concat("gs://", self.bucket.name)
        grants = [(f"{name}-writes-shards", SHARD_WRITER_ROLE, self.member)]
        grants += [
            (f"{name}-reader-{i}", SHARD_READER_ROLE, operator)
            for i, operator in enumerate(args.operators)
        ]
        self.bucket_grants = [
            gcp.storage.BucketIAMMember(
                logical,
                gcp.storage.BucketIAMMemberArgs(bucket=self.bucket.name, role=role, member=who),
                child,
            )
            for logical, role, who in grants
        ]
        self.invoker_grants = [
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invokes-{target}",
                gcp.cloudrunv2.ServiceIamMemberArgs(
                    project=args.project,
                    location=args.region,
                    name=args.services[target].service.name,
                    role=INVOKER_ROLE,
                    member=self.member,
                ),
                child,
            )
            for target in TARGETS
        ]
        env = {
            "CAPLAB_LOAD_TARGET": args.services["ledger"].uri,
            "CAPLAB_LOAD_ACTIVITY_URL": args.services["activity"].uri,
            "CAPLAB_LOAD_SHARD_OUT": self.shard_url,
            "CAPLAB_LOAD_CLOCK": "ledger",
        }
        self.job = gcp.cloudrunv2.Job(
            name,
            gcp.cloudrunv2.JobArgs(
                project=args.project,
                location=args.region,
                name=JOB_NAME,
                deletion_protection=args.deletion_protection,
                labels={"caplab-purpose": "load"},
                template=gcp.cloudrunv2.JobTemplateArgs(
                    task_count=args.task_count,
                    parallelism=args.parallelism,
                    template=gcp.cloudrunv2.JobTemplateTemplateArgs(
                        service_account=self.account.email,
                        max_retries=0,
                        timeout=args.task_timeout,
                        containers=[
                            gcp.cloudrunv2.JobTemplateTemplateContainerArgs(
                                image=args.image,
                                args=args.args,
                                envs=[
                                    gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgs(
                                        name=key, value=value
                                    )
                                    for key, value in sorted(env.items())
                                ],
                                resources=gcp.cloudrunv2.JobTemplateTemplateContainerResourcesArgs(
                                    limits={"cpu": "1", "memory": "1Gi"}
                                ),
                            )
                        ],
                    ),
                ),
            ),
            pulumi.ResourceOptions(
                parent=self, depends_on=[*self.invoker_grants, *self.bucket_grants]
            ),
        )
        self.register_outputs(
            {"job": self.job.name, "shards": self.shard_url, "service_account": self.account.email}
        )
