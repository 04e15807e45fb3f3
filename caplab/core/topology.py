"""The one source of truth for caplab's cloud topology.

Every name the system uses — Spanner instance, database and DDL; Pub/Sub topics, push
subscriptions and their dead-letter topics; Bigtable tables, column families and GC rules;
Cloud Tasks queues with their rate limits and retry policy — is declared here, once, as plain
frozen dataclasses. The emulator bootstrap (``emulators.bootstrap``) and the Pulumi program
(``infra/``) both read :data:`TOPOLOGY`, so the laptop and the cloud cannot drift; tests
assert that each side creates exactly this.

Spanner's schema is an append-only list of migrations (:class:`Migration`): the emulator
bootstrap and the Pulumi program apply the same statements in the same order, and
``infra/schema.lock`` pins every shipped one (a test fails when one changes).

This module must stay importable without Pulumi or any Google client library: it is data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

LOCAL_PROJECT = "caplab-local"
"""Project id used against the emulators (any id works there; this one is never real)."""


_MIGRATION_ID = re.compile(r"[a-z][a-z0-9_]{0,127}")


@dataclass(frozen=True)
class Migration:
    """One schema change: DDL statements applied once, in order, after every earlier
    migration. A shipped migration is never edited, reordered or removed: deployed databases
    have applied it (the Pulumi program passes every statement, in order, as the database's
    ``ddls``, and an edited statement makes it replace the database), so every change is a
    new migration at the end. ``id`` names the Spanner operation that applies it
    (``[a-z][a-z0-9_]*``), which makes applying it a second time a no-op."""

    id: str
    statements: tuple[str, ...]

    def __post_init__(self) -> None:
        if not _MIGRATION_ID.fullmatch(self.id):
            raise ValueError(f"migration id {self.id!r} is not a Spanner operation id")
        if not self.statements:
            raise ValueError(f"migration {self.id} has no statement")

    def schema(self) -> tuple[str, ...]:
        """The statements without access control (what the emulator runs)."""
        return tuple(s for s in self.statements if not is_access_control(s))


@dataclass(frozen=True)
class SpannerDatabase:
    instance: str
    database: str
    migrations: tuple[Migration, ...]
    version_retention: str = "1h"
    """How long old versions are kept: the bound on exact-staleness reads."""

    def __post_init__(self) -> None:
        ids = [migration.id for migration in self.migrations]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate migration ids in {ids}")

    @property
    def ddl(self) -> tuple[str, ...]:
        """Every statement of every migration, in order: the schema's history."""
        return tuple(s for migration in self.migrations for s in migration.statements)

    def table_names(self) -> tuple[str, ...]:
        """Names of the tables the DDL creates, in declaration order."""
        names = []
        for statement in self.schema():
            words = statement.split()
            if words[:2] == ["CREATE", "TABLE"]:
                names.append(words[2])
        return tuple(names)

    def index_names(self) -> tuple[str, ...]:
        """Names of the secondary indexes the DDL leaves in place (created and not dropped
        by a later migration), in declaration order."""
        names: list[str] = []
        for statement in self.ddl:
            words = statement.split()
            if words[0] == "CREATE" and "INDEX" in words[1:3]:
                names.append(words[words.index("INDEX") + 1])
            elif words[:2] == ["DROP", "INDEX"]:
                names.remove(words[2])
        return tuple(names)

    def schema(self) -> tuple[str, ...]:
        """The DDL without its access control: tables and indexes (what the emulator runs)."""
        return tuple(s for s in self.ddl if not is_access_control(s))

    def access_control(self) -> tuple[str, ...]:
        """The ``CREATE ROLE`` and ``GRANT`` statements, in declaration order."""
        return tuple(s for s in self.ddl if is_access_control(s))

    def database_roles(self) -> tuple[str, ...]:
        """The database roles the DDL creates."""
        return tuple(s.split()[2] for s in self.access_control() if s.startswith("CREATE ROLE"))


def is_access_control(statement: str) -> bool:
    """Whether ``statement`` is fine-grained access control (``CREATE ROLE``, ``GRANT``)."""
    return statement.startswith(("CREATE ROLE ", "GRANT "))


@dataclass(frozen=True)
class RetryPolicy:
    """Pub/Sub subscription retry policy (exponential backoff between redeliveries)."""

    minimum_backoff_seconds: int
    maximum_backoff_seconds: int


@dataclass(frozen=True)
class PushSubscription:
    """A push subscription delivering to ``path`` on the service named ``service``.

    The endpoint's base URL is resolved per environment: a local port under the emulators,
    the Cloud Run URL in the cloud (see :func:`push_endpoint`).
    """

    name: str
    topic: str
    service: str
    path: str
    dead_letter_topic: str
    max_delivery_attempts: int
    retry: RetryPolicy
    ack_deadline_seconds: int = 30
    enable_message_ordering: bool = True


@dataclass(frozen=True)
class PullSubscription:
    """A pull subscription that holds a dead-letter topic's messages for inspection and
    replay: Pub/Sub drops messages published to a topic that has no subscription, so a
    dead-letter topic without one would silently lose every poison message."""

    name: str
    topic: str
    retention_seconds: int = 7 * 24 * 3600


@dataclass(frozen=True)
class GcRule:
    """A Bigtable garbage-collection rule: keep at most ``max_versions`` cells and/or cells
    younger than ``max_age_seconds`` (union when both are set).

    The Bigtable emulator stores GC rules but never applies them: readers must filter to the
    latest cell themselves.
    """

    max_versions: int | None = None
    max_age_seconds: int | None = None


@dataclass(frozen=True)
class BigtableTable:
    name: str
    column_families: dict[str, GcRule]


@dataclass(frozen=True)
class BigtableInstance:
    instance: str
    tables: tuple[BigtableTable, ...]
    app_profiles: dict[str, str] = field(default_factory=dict)
    """Read consistency name -> app profile id (created in the cloud only; the emulator has
    no app-profile admin API)."""


@dataclass(frozen=True)
class TaskRetryConfig:
    max_attempts: int
    min_backoff_seconds: float
    max_backoff_seconds: float
    max_doublings: int
    max_retry_duration_seconds: int = 0


@dataclass(frozen=True)
class TaskQueue:
    name: str
    max_dispatches_per_second: float
    max_concurrent_dispatches: int
    retry: TaskRetryConfig


@dataclass(frozen=True)
class Topology:
    spanner: SpannerDatabase
    topics: tuple[str, ...]
    subscriptions: tuple[PushSubscription, ...]
    bigtable: BigtableInstance
    queues: tuple[TaskQueue, ...]

    def all_topics(self) -> tuple[str, ...]:
        """Every topic: the event topics and each subscription's dead-letter topic."""
        dead_letters = tuple(s.dead_letter_topic for s in self.subscriptions)
        return tuple(dict.fromkeys(self.topics + dead_letters))

    def dead_letter_subscriptions(self) -> tuple[PullSubscription, ...]:
        """One pull subscription per dead-letter topic, named after the topic."""
        topics = dict.fromkeys(s.dead_letter_topic for s in self.subscriptions)
        return tuple(PullSubscription(name=topic, topic=topic) for topic in topics)

    def subscription(self, name: str) -> PushSubscription:
        return next(s for s in self.subscriptions if s.name == name)

    def queue(self, name: str) -> TaskQueue:
        return next(q for q in self.queues if q.name == name)


LEDGER_MIGRATIONS = (
    Migration(
        "m0001_ledger",
        (
            """CREATE TABLE Accounts (
  AccountId STRING(64) NOT NULL,
  Owner STRING(256) NOT NULL,
  BalanceCents INT64 NOT NULL,
  Version INT64 NOT NULL,
  CreatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
  UpdatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
  CONSTRAINT NonNegativeBalance CHECK (BalanceCents >= 0),
) PRIMARY KEY (AccountId)""",
            """CREATE TABLE Transfers (
  TransferId STRING(64) NOT NULL,
  FromAccount STRING(64) NOT NULL,
  ToAccount STRING(64) NOT NULL,
  AmountCents INT64 NOT NULL,
  FromVersion INT64 NOT NULL,
  ToVersion INT64 NOT NULL,
  CommittedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
  CONSTRAINT PositiveAmount CHECK (AmountCents > 0),
) PRIMARY KEY (TransferId)""",
            """CREATE TABLE IdempotencyKeys (
  IdempotencyKey STRING(255) NOT NULL,
  RequestHash STRING(64) NOT NULL,
  ResponseStatus INT64 NOT NULL,
  ResponseBody STRING(MAX) NOT NULL,
  CreatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (IdempotencyKey),
  ROW DELETION POLICY (OLDER_THAN(CreatedAt, INTERVAL 1 DAY))""",
            """CREATE TABLE Outbox (
  EventId STRING(64) NOT NULL,
  EventType STRING(64) NOT NULL,
  OrderingKey STRING(64) NOT NULL,
  Payload STRING(MAX) NOT NULL,
  CommittedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
  PublishedAt TIMESTAMP OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (EventId),
  ROW DELETION POLICY (OLDER_THAN(PublishedAt, INTERVAL 7 DAY))""",
            "CREATE INDEX OutboxByPublished ON Outbox (PublishedAt, CommittedAt)",
        ),
    ),
    Migration(
        "m0002_webhooks",
        (
            # The notifier's webhook registrations: where each account wants its events
            # delivered.
            """CREATE TABLE Webhooks (
  AccountId STRING(64) NOT NULL,
  Url STRING(2048) NOT NULL,
  UpdatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (AccountId)""",
        ),
    ),
    Migration(
        "m0003_payouts",
        (
            # The payout saga: the held amount lives on the payout row until it settles
            # (leaves the ledger) or is compensated (returns to the account).
            """CREATE TABLE Payouts (
  PayoutId STRING(64) NOT NULL,
  AccountId STRING(64) NOT NULL,
  AmountCents INT64 NOT NULL,
  BankUrl STRING(2048) NOT NULL,
  State STRING(16) NOT NULL,
  IdempotencyKey STRING(255) NOT NULL,
  RequestHash STRING(64) NOT NULL,
  CreatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
  UpdatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
  CONSTRAINT PositivePayout CHECK (AmountCents > 0),
) PRIMARY KEY (PayoutId)""",
            "CREATE UNIQUE INDEX PayoutsByIdempotencyKey ON Payouts (IdempotencyKey) "
            "STORING (RequestHash)",
            """CREATE TABLE PayoutSteps (
  PayoutId STRING(64) NOT NULL,
  Step INT64 NOT NULL,
  State STRING(16) NOT NULL,
  Detail STRING(MAX) NOT NULL,
  RecordedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (PayoutId, Step),
  INTERLEAVE IN PARENT Payouts ON DELETE CASCADE""",
        ),
    ),
    Migration(
        # The operation that wrote each account's current version ("create", a transfer id,
        # or a payout step): what lets a history checker attribute every version it reads.
        "m0004_last_writer",
        ("ALTER TABLE Accounts ADD COLUMN LastWriter STRING(128)",),
    ),
    Migration(
        # The payout saga pays the configured bank, so the caller's BankUrl goes. Attempts are
        # counted and stamped before each call to the bank; each step names its event; the
        # sweeper finds open payouts through PayoutsByState.
        "m0005_payout_attempts",
        (
            "ALTER TABLE Payouts DROP COLUMN BankUrl",
            "ALTER TABLE Payouts ADD COLUMN BankAttempts INT64 NOT NULL DEFAULT (0)",
            "ALTER TABLE Payouts ADD COLUMN LastAttemptAt TIMESTAMP "
            "OPTIONS (allow_commit_timestamp = true)",
            "ALTER TABLE PayoutSteps ADD COLUMN Event STRING(32)",
            "CREATE INDEX PayoutsByState ON Payouts (State, UpdatedAt)",
        ),
    ),
    Migration(
        # Fine-grained access control: one database role per service that uses Spanner,
        # holding only the privileges its code needs (mutations: insert needs INSERT, update
        # UPDATE, insert-or-update both, delete DELETE; reads, through indexes too, need
        # SELECT). Each service connects with its role (CAPLAB_SPANNER_DATABASE_ROLE); the
        # Pulumi program lets its service account use that role and no other. The emulator has
        # no fine-grained access control: it runs the schema without these statements
        # (SpannerDatabase.schema).
        "m0006_database_roles",
        (
            "CREATE ROLE ledger",
            "GRANT SELECT, INSERT, UPDATE ON TABLE Accounts, Payouts TO ROLE ledger",
            "GRANT SELECT, INSERT ON TABLE Transfers, IdempotencyKeys, PayoutSteps TO ROLE ledger",
            "GRANT INSERT ON TABLE Outbox TO ROLE ledger",
            # The relay reads the outbox and stamps what it published; nothing else.
            "CREATE ROLE relay",
            "GRANT SELECT, UPDATE ON TABLE Outbox TO ROLE relay",
            # The internet-facing notifier reads and writes webhook registrations only.
            "CREATE ROLE notifier",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE Webhooks TO ROLE notifier",
        ),
    ),
    Migration(
        # The relay (docs/relay.md): the lease epoch that stamped each row (its fencing
        # token), rows it parked because they can never be published, an index of exactly the
        # rows still to publish (parked rows never sit in front of pending ones), and the
        # leader lease: one row per lease name, ExpiresAt on Spanner's clock (set from
        # CURRENT_TIMESTAMP()), Epoch one more for each new holder. OutboxByPublished is no
        # longer read but stays until no relay revision of before this migration can run
        # (a later migration drops it), so a rollout never breaks the running relay.
        "m0007_relay_lease",
        (
            "ALTER TABLE Outbox ADD COLUMN PublishedEpoch INT64",
            "ALTER TABLE Outbox ADD COLUMN ParkedAt TIMESTAMP "
            "OPTIONS (allow_commit_timestamp = true)",
            "ALTER TABLE Outbox ADD COLUMN ParkedReason STRING(MAX)",
            "CREATE INDEX OutboxPending ON Outbox (PublishedAt, ParkedAt, CommittedAt)",
            """CREATE TABLE RelayLease (
  Name STRING(64) NOT NULL,
  Holder STRING(256) NOT NULL,
  Epoch INT64 NOT NULL,
  ExpiresAt TIMESTAMP NOT NULL,
) PRIMARY KEY (Name)""",
            # The relay's database role (m0006) takes the lease and parks rows too.
            "GRANT SELECT, INSERT, UPDATE ON TABLE RelayLease TO ROLE relay",
        ),
    ),
)
"""The ledger database's schema, oldest change first. Append a migration (and pin it in
``infra/schema.lock``); never edit one that shipped."""

_PUSH_RETRY = RetryPolicy(minimum_backoff_seconds=1, maximum_backoff_seconds=60)

OUTAGE_BUDGET_SECONDS = 3600
"""How long a consumer's backend may be down before its events dead-letter, at the least."""

_DURABLE_PUSH_RETRY = RetryPolicy(minimum_backoff_seconds=60, maximum_backoff_seconds=600)
_DURABLE_DELIVERY_ATTEMPTS = 100
"""Pub/Sub waits at least ``minimum_backoff`` between two deliveries of a failing message, so
the last of 100 attempts comes at least 99 x 60 s = 99 min after the first, whatever the
growth between the two bounds (docs/relay.md has the arithmetic and the sources)."""

TOPOLOGY = Topology(
    spanner=SpannerDatabase(instance="caplab", database="ledger", migrations=LEDGER_MIGRATIONS),
    topics=("transfer-events",),
    subscriptions=(
        PushSubscription(
            name="activity-projector",
            topic="transfer-events",
            service="activity",
            path="/pubsub/transfer-events",
            dead_letter_topic="activity-projector-dead-letter",
            max_delivery_attempts=_DURABLE_DELIVERY_ATTEMPTS,
            retry=_DURABLE_PUSH_RETRY,
        ),
        PushSubscription(
            name="notifier",
            topic="transfer-events",
            service="notifier",
            path="/pubsub/transfer-events",
            dead_letter_topic="notifier-dead-letter",
            max_delivery_attempts=_DURABLE_DELIVERY_ATTEMPTS,
            retry=_DURABLE_PUSH_RETRY,
        ),
        PushSubscription(
            name="ledger-cache-invalidation",
            topic="transfer-events",
            service="ledger",
            path="/internal/invalidate",
            dead_letter_topic="ledger-cache-invalidation-dead-letter",
            # A late invalidation is worth nothing once the cached entry's TTL has passed:
            # this one keeps a short budget, and a dead-lettered invalidation costs nothing.
            max_delivery_attempts=5,
            retry=_PUSH_RETRY,
            # Invalidation is idempotent and order-free: ordering would only add latency.
            enable_message_ordering=False,
        ),
    ),
    bigtable=BigtableInstance(
        instance="caplab-activity",
        tables=(
            BigtableTable(
                name="account_activity",
                column_families={
                    # One cell per column: a redelivered event rewrites the same value.
                    "t": GcRule(max_versions=1),
                },
            ),
        ),
        app_profiles={"eventual": "multi-cluster", "read-your-writes": "single-cluster"},
    ),
    queues=(
        TaskQueue(
            name="webhooks",
            max_dispatches_per_second=50,
            max_concurrent_dispatches=20,
            retry=TaskRetryConfig(
                max_attempts=10, min_backoff_seconds=1, max_backoff_seconds=60, max_doublings=4
            ),
        ),
        TaskQueue(
            name="payouts",
            max_dispatches_per_second=10,
            max_concurrent_dispatches=5,
            retry=TaskRetryConfig(
                max_attempts=5, min_backoff_seconds=1, max_backoff_seconds=30, max_doublings=3
            ),
        ),
    ),
)


def push_endpoint(subscription: PushSubscription, service_urls: Mapping[str, str]) -> str:
    """The push endpoint of ``subscription`` given each service's base URL.

    Locally the URLs are ``http://127.0.0.1:<port>``; in the cloud they are Cloud Run URLs.
    """
    return service_urls[subscription.service].rstrip("/") + subscription.path
