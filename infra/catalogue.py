"""Which Cloud Run services are deployed, and what each one may touch.

The topology names the resources; this table says who uses them, so the program can grant
each service account roles on exactly those resources and nothing project-wide. Which
service receives which push subscription comes from the topology itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from caplab.topology import TOPOLOGY, Topology

LOCAL_ONLY = frozenset({"sink"})
"""Services that exist only on the laptop (the webhook sink stands in for customers)."""


@dataclass(frozen=True)
class DeployedService:
    name: str
    external: bool
    """Reachable from the internet (still behind IAM unless public); otherwise internal-only
    ingress, for services called only by Pub/Sub push, Cloud Tasks or nobody."""
    may_be_public: bool = False
    """``caplab:publicApi`` may open this one to ``allUsers``."""
    spanner: bool = False
    bigtable: bool = False
    publishes: tuple[str, ...] = ()
    enqueues: tuple[str, ...] = ()
    handles_queues: tuple[str, ...] = ()
    """Queues whose tasks Cloud Tasks delivers to this service (with an OIDC token)."""
    always_on: bool = False
    """A background worker: at least one instance, CPU allocated outside requests."""

    @property
    def account_id(self) -> str:
        return f"caplab-{self.name}"

    @property
    def audience(self) -> str:
        """The OIDC audience callers put in their tokens: a custom audience of the Cloud Run
        service, known before the service's URL exists (which breaks the cycle service →
        environment → service URL)."""
        return f"caplab-{self.name}"


DEPLOYED: tuple[DeployedService, ...] = (
    DeployedService(
        # The payout saga: the ledger schedules the bank call as a task to its own endpoint.
        name="ledger",
        external=True,
        may_be_public=True,
        spanner=True,
        enqueues=("payouts",),
        handles_queues=("payouts",),
    ),
    DeployedService(
        name="relay", external=False, spanner=True, publishes=("transfer-events",), always_on=True
    ),
    DeployedService(name="activity", external=True, bigtable=True),
    DeployedService(
        # External for its webhook-registration API; Spanner holds the registrations.
        name="notifier",
        external=True,
        spanner=True,
        enqueues=("webhooks",),
        handles_queues=("webhooks",),
    ),
)


def deployed(name: str) -> DeployedService:
    return next(service for service in DEPLOYED if service.name == name)


def publishes_to(service: DeployedService, topic: str, topology: Topology = TOPOLOGY) -> bool:
    """Whether ``service`` publishes to ``topic``: its declared topics, plus the dead-letter
    topic of each subscription it consumes (push consumers dead-letter poison messages
    themselves, besides Pub/Sub doing it after the maximum attempts)."""
    return topic in service.publishes or any(
        s.service == service.name and s.dead_letter_topic == topic for s in topology.subscriptions
    )


def push_targets(topology: Topology = TOPOLOGY) -> tuple[str, ...]:
    """Services that receive at least one push subscription, in catalogue order."""
    targets = {subscription.service for subscription in topology.subscriptions}
    return tuple(service.name for service in DEPLOYED if service.name in targets)


def queue_handler(queue: str) -> DeployedService:
    """The service Cloud Tasks delivers ``queue``'s tasks to."""
    return next(service for service in DEPLOYED if queue in service.handles_queues)


Predicate = Callable[[DeployedService], bool]


def task_handlers() -> tuple[DeployedService, ...]:
    return tuple(service for service in DEPLOYED if service.handles_queues)


def enqueuers_of(handler: DeployedService) -> tuple[DeployedService, ...]:
    """Services that create tasks in at least one queue ``handler`` receives."""
    return tuple(
        service for service in DEPLOYED if set(service.enqueues) & set(handler.handles_queues)
    )
