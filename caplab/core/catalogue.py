"""Every caplab service, declared once: what it is, where it runs, what it may touch.

``caplab serve`` and ``caplab service NAME`` read the name, local port and app factory; the
emulator bootstrap reads the local ports (push endpoints); the Pulumi program reads what each
deployed service touches, so it can grant each service account roles on exactly those
resources and nothing project-wide. Which service receives which push subscription comes from
the topology itself. To add a service: add a row here (and its subscriptions or queues to the
topology); ``docs/adding-a-service.md`` walks through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from caplab.core.topology import TOPOLOGY, Topology


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    """The local port ``caplab serve`` runs it on (in the cloud it is ``$PORT``)."""
    factory: str
    """The ASGI app factory, ``"module:function"``."""
    local_only: bool = False
    """Exists only on the laptop (the webhook sink stands in for customers, the bank for a
    bank)."""
    external: bool = False
    """Reachable from the internet (still behind IAM unless public); otherwise internal-only
    ingress, for services called only by Pub/Sub push, Cloud Tasks or nobody."""
    spanner: bool = False
    bigtable: bool = False
    publishes: tuple[str, ...] = ()
    enqueues: tuple[str, ...] = ()
    handles_queues: tuple[str, ...] = ()
    """Queues whose tasks Cloud Tasks delivers to this service (with an OIDC token)."""
    always_on: bool = False
    """A background worker: at least one instance, CPU allocated outside requests."""
    may_be_public: bool = False
    """``caplab:publicApi`` may open this one to ``allUsers``."""

    @property
    def account_id(self) -> str:
        return f"caplab-{self.name}"

    @property
    def audience(self) -> str:
        """The OIDC audience callers put in their tokens: a custom audience of the Cloud Run
        service, known before the service's URL exists (which breaks the cycle service →
        environment → service URL)."""
        return f"caplab-{self.name}"


SERVICES: tuple[Service, ...] = (
    Service(
        # The payout saga: the ledger schedules the bank call as a task to its own endpoint.
        name="ledger",
        port=8081,
        factory="services.ledger.app:create_app",
        external=True,
        may_be_public=True,
        spanner=True,
        enqueues=("payouts",),
        handles_queues=("payouts",),
    ),
    Service(
        name="relay",
        port=8084,
        factory="services.relay.app:create_app",
        spanner=True,
        publishes=("transfer-events",),
        always_on=True,
    ),
    Service(
        name="activity",
        port=8082,
        factory="services.activity.app:create_app",
        external=True,
        bigtable=True,
    ),
    Service(
        # External for its webhook-registration API; Spanner holds the registrations.
        name="notifier",
        port=8083,
        factory="services.notifier.app:create_app",
        external=True,
        spanner=True,
        enqueues=("webhooks",),
        handles_queues=("webhooks",),
    ),
    Service(name="sink", port=8089, factory="caplab.local.sink.app:create_app", local_only=True),
    # The ledger's payout saga pays through it locally (CAPLAB_BANK_URL); in the cloud the bank
    # is a real one, configured on the ledger.
    Service(name="bank", port=8090, factory="caplab.local.bank.app:create_app", local_only=True),
)
"""Every service, in the order ``caplab serve`` starts them."""

NAMES: tuple[str, ...] = tuple(service.name for service in SERVICES)
DEPLOYED: tuple[Service, ...] = tuple(s for s in SERVICES if not s.local_only)
LOCAL_ONLY: frozenset[str] = frozenset(s.name for s in SERVICES if s.local_only)


def service(name: str) -> Service:
    """The catalogue row of ``name`` (``KeyError`` naming it when there is none)."""
    for row in SERVICES:
        if row.name == name:
            return row
    raise KeyError(name)


def deployed(name: str) -> Service:
    row = service(name)
    if row.local_only:
        raise KeyError(f"{name} is local-only")
    return row


def local_ports() -> dict[str, int]:
    return {s.name: s.port for s in SERVICES}


def local_service_urls(host: str = "127.0.0.1") -> dict[str, str]:
    """Base URLs of the services as ``caplab serve`` runs them on this machine."""
    return {s.name: f"http://{host}:{s.port}" for s in SERVICES}


def publishes_to(row: Service, topic: str, topology: Topology = TOPOLOGY) -> bool:
    """Whether ``row`` publishes to ``topic``: its declared topics, plus the dead-letter
    topic of each subscription it consumes (push consumers dead-letter poison messages
    themselves, besides Pub/Sub doing it after the maximum attempts)."""
    return topic in row.publishes or any(
        s.service == row.name and s.dead_letter_topic == topic for s in topology.subscriptions
    )


def push_targets(topology: Topology = TOPOLOGY) -> tuple[str, ...]:
    """Deployed services that receive at least one push subscription, in catalogue order."""
    targets = {subscription.service for subscription in topology.subscriptions}
    return tuple(s.name for s in DEPLOYED if s.name in targets)


def queue_handler(queue: str) -> Service:
    """The service Cloud Tasks delivers ``queue``'s tasks to."""
    return next(s for s in DEPLOYED if queue in s.handles_queues)


Predicate = Callable[[Service], bool]


def task_handlers() -> tuple[Service, ...]:
    return tuple(s for s in DEPLOYED if s.handles_queues)


def enqueuers_of(handler: Service) -> tuple[Service, ...]:
    """Services that create tasks in at least one queue ``handler`` receives."""
    return tuple(s for s in DEPLOYED if set(s.enqueues) & set(handler.handles_queues))
