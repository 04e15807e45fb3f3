"""Cloud Tasks queues with the topology's rate limits and retry policy, and OIDC targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from caplab.core.topology import TaskQueue

ENQUEUER_ROLE = "roles/cloudtasks.enqueuer"
ACT_AS_ROLE = "roles/iam.serviceAccountUser"


@dataclass
class TaskTarget:
    """A service receiving tasks: who Cloud Tasks claims to be when it delivers them, to
    which audience, and who may create them."""

    identity_id: pulumi.Input[str]
    """The identity's resource name (``projects/<p>/serviceAccounts/<email>``)."""
    identity_email: pulumi.Input[str]
    audience: pulumi.Input[str]
    creators: Sequence[pulumi.Input[str]] = field(default_factory=list)
    """Members granted ``iam.serviceAccountUser`` on the identity: Cloud Tasks mints a task's
    OIDC token only for a creator allowed to act as that identity."""


@dataclass
class TaskQueuesArgs:
    project: pulumi.Input[str]
    location: pulumi.Input[str]
    queues: Sequence[TaskQueue]
    targets: Mapping[str, TaskTarget]
    """Receiving service name -> its target (one per service, however many queues)."""
    handlers: Mapping[str, str]
    """Queue name -> the receiving service whose OIDC identity every task of it carries."""
    enqueuers: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    """Queue name -> IAM members granted ``cloudtasks.enqueuer`` on that queue only."""


def _seconds(value: float) -> str:
    return f"{value:g}s"


class TaskQueues(pulumi.ComponentResource):
    """One queue per topology queue. The queue-level HTTP target sets the OIDC token, so every
    task is authenticated whatever its creator put in it. A deleted queue's name stays
    reserved for days: never rename queues casually."""

    def __init__(
        self, name: str, args: TaskQueuesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:TaskQueues", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.queues = {
            queue.name: gcp.cloudtasks.Queue(
                queue.name,
                gcp.cloudtasks.QueueArgs(
                    project=args.project,
                    location=args.location,
                    name=queue.name,
                    rate_limits=gcp.cloudtasks.QueueRateLimitsArgs(
                        max_dispatches_per_second=queue.max_dispatches_per_second,
                        max_concurrent_dispatches=queue.max_concurrent_dispatches,
                    ),
                    retry_config=gcp.cloudtasks.QueueRetryConfigArgs(
                        max_attempts=queue.retry.max_attempts,
                        min_backoff=_seconds(queue.retry.min_backoff_seconds),
                        max_backoff=_seconds(queue.retry.max_backoff_seconds),
                        max_doublings=queue.retry.max_doublings,
                        max_retry_duration=_seconds(queue.retry.max_retry_duration_seconds),
                    ),
                    http_target=gcp.cloudtasks.QueueHttpTargetArgs(
                        oidc_token=gcp.cloudtasks.QueueHttpTargetOidcTokenArgs(
                            service_account_email=args.targets[
                                args.handlers[queue.name]
                            ].identity_email,
                            audience=args.targets[args.handlers[queue.name]].audience,
                        )
                    ),
                ),
                child,
            )
            for queue in args.queues
        }
        self.grants = [
            gcp.cloudtasks.QueueIamMember(
                f"{queue}-enqueuer-{index}",
                gcp.cloudtasks.QueueIamMemberArgs(
                    project=args.project,
                    location=args.location,
                    name=self.queues[queue].name,
                    role=ENQUEUER_ROLE,
                    member=member,
                ),
                child,
            )
            for queue, members in args.enqueuers.items()
            for index, member in enumerate(members)
        ]
        self.act_as_grants = [
            gcp.serviceaccount.IAMMember(
                f"{handler}-tasks-act-as-{index}",
                gcp.serviceaccount.IAMMemberArgs(
                    service_account_id=target.identity_id,
                    role=ACT_AS_ROLE,
                    member=creator,
                ),
                child,
            )
            for handler, target in args.targets.items()
            for index, creator in enumerate(target.creators)
        ]
        self.register_outputs({"queues": [q.id for q in self.queues.values()]})
