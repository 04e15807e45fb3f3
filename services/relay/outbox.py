"""The outbox relay: publishes committed ``Outbox`` rows on ``transfer-events``, whatever
event type they carry, while it holds the relay lease (:mod:`services.relay.lease`).

**A pass.** Read up to ``batch_size`` rows still to publish, oldest commit first, through the
``OutboxPending`` index (``PublishedAt IS NULL AND ParkedAt IS NULL``); publish each; wait for
Pub/Sub to acknowledge them; then stamp the acknowledged rows ``PublishedAt`` (and
``PublishedEpoch``, the lease epoch) in one transaction that first checks the lease
(:meth:`~services.relay.lease.Lease.fence`). A row is only stamped after Pub/Sub has it, so a
relay killed at any point loses nothing: the next leader publishes what is not stamped
(at-least-once; consumers deduplicate on ``event_id``).

**The message** is built from the row, never from knowledge of a transfer: the stored
payload with ``committed_at`` (the row's commit timestamp, RFC 3339) added, attributes
``event_id``, ``event_type`` and ``committed_at`` from the row's columns, and the row's
``OrderingKey``. For a ``transfer.committed`` row that is byte for byte the
:class:`~services.shared.events.TransferCommitted` consumers decode.

**Poison rows are parked.** A row that can never become a valid message — its payload is not a
JSON object, or names another ``event_id`` or ``type`` than its columns, or is too large for
Pub/Sub — is stamped ``ParkedAt`` with its ``ParkedReason`` in the same fenced transaction,
counted (``parked`` in ``/stats``) and logged with its id. It leaves the pending index, so it
never holds back the rows behind it; it stays in the table (the row deletion policy only
removes published rows) until someone repairs it and clears ``ParkedAt``.

**Pacing.** Spanner reads go through :class:`~services.relay.reads.Reads` (they fail rather than
spin when Spanner is unreachable) and each publish is retried by the client for at most
``publish_timeout``. A failed pass (Spanner or Pub/Sub down) waits an exponential back-off with
jitter (:class:`~services.relay.pacing.Backoff`, visible in ``/stats``); after a pass that found
rows the next poll starts one busy interval after this one started (at once when the batch was
full); empty passes stretch the interval up to the idle one
(:class:`~services.relay.pacing.PollInterval`).

**Ordering.** The publisher has message ordering on. When a publish fails, the client fails the
later messages of that ordering key too and pauses the key until it is resumed; nothing of that
key is stamped, so the next pass publishes them again in commit order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as google_exceptions
from google.api_core.retry import Retry, if_exception_type
from google.cloud import spanner
from google.cloud.pubsub_v1.publisher.exceptions import MessageTooLargeError
from hdrh.histogram import HdrHistogram

from caplab.core.timestamps import rfc3339
from services.relay.lease import Deposed
from services.shared.events import message_attributes
from services.shared.transactions import TransactionRunner

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

    from services.relay.lease import Lease
    from services.relay.pacing import Backoff, PollInterval
    from services.relay.reads import Reads

log = logging.getLogger(__name__)

PENDING = """
SELECT EventId, EventType, OrderingKey, Payload, CommittedAt
FROM Outbox@{FORCE_INDEX=OutboxPending}
WHERE PublishedAt IS NULL AND ParkedAt IS NULL
ORDER BY CommittedAt
LIMIT @batch"""

# The errors the Pub/Sub client's own default publish policy retries; only its deadline is
# ours (the default keeps retrying for 10 minutes, long after the relay gave up waiting).
_RETRIED = if_exception_type(
    google_exceptions.Aborted,
    google_exceptions.Cancelled,
    google_exceptions.DeadlineExceeded,
    google_exceptions.InternalServerError,
    google_exceptions.ResourceExhausted,
    google_exceptions.ServiceUnavailable,
    google_exceptions.Unknown,
)


class Unpublishable(ValueError):
    """The row can never become a valid message."""


class PublishFailed(RuntimeError):
    """Pub/Sub did not acknowledge some messages of a pass (they are published again)."""


@dataclass(frozen=True)
class Outgoing:
    """One Outbox row as the message the relay publishes."""

    event_id: str
    ordering_key: str
    data: bytes
    attributes: dict[str, str]
    committed_at: datetime

    @classmethod
    def from_row(
        cls,
        event_id: str,
        event_type: str,
        ordering_key: str,
        payload: str,
        committed_at: datetime,
    ) -> Outgoing:
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as error:
            raise Unpublishable(f"payload is not JSON: {error}") from error
        if not isinstance(body, dict):
            raise Unpublishable("payload is not a JSON object")
        if body.get("event_id") != event_id:
            raise Unpublishable(f"payload event_id {body.get('event_id')!r} is not the row's")
        if body.get("type") != event_type:
            raise Unpublishable(f"payload type {body.get('type')!r} is not the row's EventType")
        body["committed_at"] = rfc3339(committed_at)
        return cls(
            event_id=event_id,
            ordering_key=ordering_key,
            data=json.dumps(body, separators=(",", ":")).encode(),
            attributes=message_attributes(event_id, event_type, committed_at),
            committed_at=committed_at,
        )


@dataclass
class RelayStats:
    published: int = 0
    parked: int = 0
    fenced: int = 0
    publish_failures: int = 0
    polls: int = 0
    batches: int = 0
    delays: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 3_600_000_000, 3))
    """Commit-to-publish-acknowledged delays in microseconds, 1 µs .. 1 h, 3 digits."""

    def as_dict(self) -> dict[str, Any]:
        def ms(percentile: float) -> float:
            return self.delays.get_value_at_percentile(percentile) / 1000

        counters = {k: v for k, v in vars(self).items() if k != "delays"}
        return {
            **counters,
            "commit_to_publish_ms": {
                "count": self.delays.get_total_count(),
                "p50": ms(50),
                "p90": ms(90),
                "p99": ms(99),
                "max": self.delays.get_max_value() / 1000,
            },
        }


class OutboxRelay:
    def __init__(
        self,
        runner: TransactionRunner,
        reads: Reads,
        lease: Lease,
        publisher: PublisherClient,
        topic_path: str,
        *,
        poll: PollInterval,
        backoff: Backoff,
        publish_timeout: float,
        batch_size: int = 200,
    ) -> None:
        self.runner = runner
        self.reads = reads
        self.lease = lease
        self.publisher = publisher
        self.topic_path = topic_path
        self.poll = poll
        self.backoff = backoff
        self.publish_timeout = publish_timeout
        self.batch_size = batch_size
        self.stats = RelayStats()
        self._retry = Retry(
            predicate=_RETRIED, initial=0.1, maximum=1.0, multiplier=2, timeout=publish_timeout
        )
        self._lock = threading.Lock()

    def relay_once(self, epoch: int) -> int:
        """One pass under lease ``epoch``: the number of rows it found (published, parked or
        left for the next pass). Raises :class:`PublishFailed` after stamping what Pub/Sub
        did acknowledge, and :class:`~services.relay.lease.Deposed` if the lease moved on."""
        rows = self.reads.query(PENDING, {"batch": self.batch_size})
        with self._lock:
            self.stats.polls += 1
        if not rows:
            return 0
        outgoing: list[Outgoing] = []
        parked: list[tuple[str, str]] = []
        for row in rows:
            try:
                outgoing.append(Outgoing.from_row(*row))
            except Unpublishable as error:
                parked.append((row[0], str(error)))
        published, errors = self._publish(outgoing, parked)
        if published or parked:
            self.runner.run(self._stamp, epoch, published, parked)
        for event_id, reason in parked:
            log.error(
                "parked outbox row %s: %s",
                event_id,
                reason,
                extra={"fields": {"event_id": event_id, "parked_reason": reason}},
            )
        with self._lock:
            self.stats.published += len(published)
            self.stats.parked += len(parked)
            self.stats.publish_failures += len(errors)
            self.stats.batches += 1
        if errors:
            raise PublishFailed(f"{len(errors)} of {len(outgoing)} not published: {errors[0]}")
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        """Relay while this process leads, until ``stop`` is set."""
        while not stop.is_set():
            epoch = self.lease.leader_epoch()
            if epoch is None:
                self.poll.after(1)  # a new leader starts at the busy interval
                self.lease.wait_for_leadership(timeout=self.lease.renew_every)
                continue
            started = time.monotonic()
            try:
                found = self.relay_once(epoch)
                self.backoff.succeeded()
            except Deposed as error:
                log.warning("stamp refused: %s", error)
                with self._lock:
                    self.stats.fenced += 1
                self.lease.deposed(epoch)
                continue
            except Exception as error:  # Spanner or Pub/Sub failing: back off, say so
                wait = self.backoff.failed(error)
                log.warning("relay pass failed: %s; retrying in %.2fs", error, wait)
                stop.wait(wait)
                continue
            # The interval runs from one poll's start to the next: a pass's own time is not
            # added to the delay of the rows committed meanwhile.
            wait = self.poll.after(found) - (time.monotonic() - started)
            if found < self.batch_size and wait > 0:
                stop.wait(wait)

    def snapshot_stats(self) -> dict[str, Any]:
        with self._lock:
            stats = self.stats.as_dict()
        return {
            **stats,
            "poll_interval_s": self.poll.current,
            "backoff": self.backoff.as_dict(),
            "lease": self.lease.snapshot(),
        }

    def _publish(
        self, outgoing: list[Outgoing], parked: list[tuple[str, str]]
    ) -> tuple[list[str], list[Exception]]:
        """Publish ``outgoing``; the event ids Pub/Sub acknowledged and the errors of the
        rest. A message too large for Pub/Sub joins ``parked``."""
        pending = []
        for message in outgoing:
            try:
                future = self.publisher.publish(
                    self.topic_path,
                    message.data,
                    ordering_key=message.ordering_key,
                    retry=self._retry,
                    timeout=self.publish_timeout,
                    **message.attributes,
                )
            except MessageTooLargeError as error:
                parked.append((message.event_id, f"too large for Pub/Sub: {error}"))
                continue
            pending.append((message, future))
        published: list[str] = []
        errors: list[Exception] = []
        # The client gives up after publish_timeout; the extra second covers its bookkeeping.
        deadline = time.monotonic() + self.publish_timeout + 1
        for message, future in pending:
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as error:
                errors.append(error)
                # An ordered publisher pauses a key after a failure until told to resume.
                self.publisher.resume_publish(self.topic_path, message.ordering_key)
                continue
            published.append(message.event_id)
            delay = datetime.now(UTC) - message.committed_at
            with self._lock:
                self.stats.delays.record_value(max(1, int(delay.total_seconds() * 1_000_000)))
        return published, errors

    def _stamp(
        self, transaction: Any, epoch: int, published: list[str], parked: list[tuple[str, str]]
    ) -> None:
        self.lease.fence(transaction, epoch)
        if published:
            transaction.update(
                "Outbox",
                ("EventId", "PublishedAt", "PublishedEpoch"),
                [(event_id, spanner.COMMIT_TIMESTAMP, epoch) for event_id in published],
            )
        if parked:
            transaction.update(
                "Outbox",
                ("EventId", "ParkedAt", "ParkedReason"),
                [(event_id, spanner.COMMIT_TIMESTAMP, reason) for event_id, reason in parked],
            )
