"""Pub/Sub fan-out: topics, OIDC push subscriptions, dead-letter topics and their IAM.

Subscriptions never expire: Pub/Sub deletes one idle for 31 days unless its expiration
policy has an empty TTL (https://cloud.google.com/pubsub/docs/subscription-properties), and a
quiet month must not delete a push subscription or a dead-letter hold.

The Pub/Sub service agent (``service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com``) is
created with ``gcp.projects.ServiceIdentity`` rather than assumed: on a new project it may
not exist yet when the dead-letter grants run. It mints the OIDC tokens of push deliveries,
which needs ``iam.serviceAccountTokenCreator`` on each push identity (projects created before
April 2021 do not grant it by default); the grant is on those accounts only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from caplab.core.topology import PushSubscription, Topology

PUBLISHER_ROLE = "roles/pubsub.publisher"
SUBSCRIBER_ROLE = "roles/pubsub.subscriber"
TOKEN_CREATOR_ROLE = "roles/iam.serviceAccountTokenCreator"
NEVER_EXPIRE = gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl="")


@dataclass
class PushTarget:
    """Where a service receives pushes and who Pub/Sub claims to be when it calls."""

    url: pulumi.Input[str]
    """The service's base URL (the subscription's path is appended)."""
    audience: pulumi.Input[str]
    identity_email: pulumi.Input[str]
    """The service account whose OIDC token Pub/Sub attaches (the service's only invoker
    for pushes)."""
    identity_id: pulumi.Input[str]
    """That account's resource name (``projects/<p>/serviceAccounts/<email>``)."""


@dataclass
class EventFanoutArgs:
    project: pulumi.Input[str]
    topology: Topology
    targets: Mapping[str, PushTarget]
    """Service name -> its push target, for every service a subscription names."""
    publishers: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    """Topic -> IAM members granted ``pubsub.publisher`` on that topic only."""


class EventFanout(pulumi.ComponentResource):
    """Every topic of the topology (event topics and dead-letter topics) and its push
    subscriptions. The Pub/Sub service agent gets exactly what dead-lettering needs:
    publisher on each dead-letter topic, subscriber on each source subscription (to
    acknowledge the message it forwarded)."""

    def __init__(
        self, name: str, args: EventFanoutArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("caplab:infra:EventFanout", name, None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self._project = args.project
        self.service_agent = gcp.projects.ServiceIdentity(
            f"{name}-pubsub-agent",
            gcp.projects.ServiceIdentityArgs(project=args.project, service="pubsub.googleapis.com"),
            self._child,
        )
        service_agent = self.service_agent.member
        self.topics = {
            topic: gcp.pubsub.Topic(
                topic, gcp.pubsub.TopicArgs(project=args.project, name=topic), self._child
            )
            for topic in args.topology.all_topics()
        }
        self.subscriptions = {
            declared.name: self._subscription(declared, args.targets[declared.service])
            for declared in args.topology.subscriptions
        }
        self.dead_letter_holds = {
            held.name: gcp.pubsub.Subscription(
                held.name,
                gcp.pubsub.SubscriptionArgs(
                    project=args.project,
                    name=held.name,
                    topic=self.topics[held.topic].id,
                    message_retention_duration=f"{held.retention_seconds}s",
                    # Nothing consumes it until someone looks.
                    expiration_policy=NEVER_EXPIRE,
                ),
                self._child,
            )
            for held in args.topology.dead_letter_subscriptions()
        }
        dead_letter_topics = {s.dead_letter_topic for s in args.topology.subscriptions}
        self.grants = [
            *(
                self._topic_grant(f"{topic}-agent", topic, service_agent)
                for topic in sorted(dead_letter_topics)
            ),
            *(
                gcp.pubsub.SubscriptionIAMMember(
                    f"{subscription}-agent",
                    gcp.pubsub.SubscriptionIAMMemberArgs(
                        project=args.project,
                        subscription=resource.name,
                        role=SUBSCRIBER_ROLE,
                        member=service_agent,
                    ),
                    self._child,
                )
                for subscription, resource in self.subscriptions.items()
            ),
            *(
                self._topic_grant(f"{topic}-publisher-{index}", topic, member)
                for topic, members in args.publishers.items()
                for index, member in enumerate(members)
            ),
        ]
        self.token_grants = [
            gcp.serviceaccount.IAMMember(
                f"{service}-push-token-creator",
                gcp.serviceaccount.IAMMemberArgs(
                    service_account_id=target.identity_id,
                    role=TOKEN_CREATOR_ROLE,
                    member=service_agent,
                ),
                self._child,
            )
            for service, target in sorted(args.targets.items())
        ]
        self.register_outputs(
            {
                "topics": [topic.id for topic in self.topics.values()],
                "subscriptions": [s.id for s in self.subscriptions.values()],
                "dead_letter_subscriptions": [s.id for s in self.dead_letter_holds.values()],
            }
        )

    def _subscription(
        self, declared: PushSubscription, target: PushTarget
    ) -> gcp.pubsub.Subscription:
        return gcp.pubsub.Subscription(
            declared.name,
            gcp.pubsub.SubscriptionArgs(
                project=self._project,
                name=declared.name,
                topic=self.topics[declared.topic].id,
                ack_deadline_seconds=declared.ack_deadline_seconds,
                enable_message_ordering=declared.enable_message_ordering,
                expiration_policy=NEVER_EXPIRE,
                push_config=gcp.pubsub.SubscriptionPushConfigArgs(
                    push_endpoint=pulumi.Output.concat(target.url, declared.path),
                    oidc_token=gcp.pubsub.SubscriptionPushConfigOidcTokenArgs(
                        service_account_email=target.identity_email, audience=target.audience
                    ),
                ),
                dead_letter_policy=gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                    dead_letter_topic=self.topics[declared.dead_letter_topic].id,
                    max_delivery_attempts=declared.max_delivery_attempts,
                ),
                retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                    minimum_backoff=f"{declared.retry.minimum_backoff_seconds}s",
                    maximum_backoff=f"{declared.retry.maximum_backoff_seconds}s",
                ),
            ),
            self._child,
        )

    def _topic_grant(
        self, name: str, topic: str, member: pulumi.Input[str]
    ) -> gcp.pubsub.TopicIAMMember:
        return gcp.pubsub.TopicIAMMember(
            name,
            gcp.pubsub.TopicIAMMemberArgs(
                project=self._project,
                topic=self.topics[topic].name,
                role=PUBLISHER_ROLE,
                member=member,
            ),
            self._child,
        )
