"""The outbox relay: moves committed ``Outbox`` rows to the ``transfer-events`` topic.

Mechanism: a short poll. Every ``poll_interval`` (immediately again while batches come back
full) it reads the unpublished rows through the ``OutboxByPublished`` index — ``PublishedAt IS
NULL``, oldest commit first — publishes each (ordering key = the debited account; event id,
type and commit timestamp as attributes), waits for Pub/Sub to acknowledge them, and only then
stamps ``PublishedAt`` with one blind-write transaction.

Why polling rather than a change stream: the whole relay state lives in the Outbox table, so a
relay killed with -9 at any point simply re-reads what is not stamped yet and publishes it again
(at-least-once; consumers deduplicate on ``event_id``). A change-stream reader must also track
partition tokens, child partitions and a low watermark durably to give the same guarantee —
more moving parts for the same delivery promise. The cost is latency: on average half a poll
interval plus a read, and one strong read per interval while idle; the relay measures its
commit-to-publish delay (``/stats``) so the choice stays visible.

Crash windows: killed after publishing and before stamping → the batch is published again on
restart (duplicates). Killed before publishing → nothing left the database; it is published
after restart. Nothing is lost in either case because the row is only stamped after Pub/Sub
acknowledged it.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.cloud import spanner
from hdrh.histogram import HdrHistogram

from services.shared.events import TransferEvent
from services.shared.transactions import TransactionRunner

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

log = logging.getLogger(__name__)

UNPUBLISHED = """
SELECT EventId, Payload, CommittedAt
FROM Outbox@{FORCE_INDEX=OutboxByPublished}
WHERE PublishedAt IS NULL
ORDER BY CommittedAt
LIMIT @batch"""


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    publish_failures: int = 0
    polls: int = 0

    def as_dict(self, delays: HdrHistogram) -> dict[str, Any]:
        def ms(percentile: float) -> float:
            return delays.get_value_at_percentile(percentile) / 1000

        return {
            **vars(self),
            "commit_to_publish_ms": {
                "count": delays.get_total_count(),
                "p50": ms(50),
                "p90": ms(90),
                "p99": ms(99),
                "max": delays.get_max_value() / 1000,
            },
        }


class OutboxRelay:
    def __init__(
        self,
        runner: TransactionRunner,
        publisher: PublisherClient,
        topic_path: str,
        *,
        batch_size: int = 200,
        poll_interval: timedelta = timedelta(milliseconds=50),
        publish_timeout: timedelta = timedelta(seconds=30),
    ) -> None:
        self.runner = runner
        self.database = runner.database
        self.publisher = publisher
        self.topic_path = topic_path
        self.batch_size = batch_size
        self.poll_interval = poll_interval.total_seconds()
        self.publish_timeout = publish_timeout.total_seconds()
        self.stats = RelayStats()
        # Commit-to-publish delays in microseconds, 1 µs .. 1 h, 3 significant digits.
        self.delays = HdrHistogram(1, 3_600_000_000, 3)
        self._lock = threading.Lock()

    def relay_once(self) -> int:
        """Publish one batch of unpublished rows and stamp them; the number stamped."""
        with self.database.snapshot() as snapshot:
            rows = list(snapshot.execute_sql(
                UNPUBLISHED,
                params={"batch": self.batch_size},
                param_types={"batch": spanner.param_types.INT64},
            ))  # fmt: skip
        with self._lock:
            self.stats.polls += 1
        if not rows:
            return 0
        pending = []
        for event_id, payload, committed_at in rows:
            outgoing = TransferEvent.from_json(payload).committed(committed_at)
            future = self.publisher.publish(
                self.topic_path,
                outgoing.to_json(),
                ordering_key=outgoing.ordering_key,
                **outgoing.attributes(),
            )
            pending.append((event_id, committed_at, outgoing.ordering_key, future))
        published: list[str] = []
        for event_id, committed_at, ordering_key, future in pending:
            try:
                future.result(timeout=self.publish_timeout)
            except (futures.TimeoutError, Exception) as error:  # retried on the next poll
                log.warning("publish of %s failed: %s", event_id, error)
                # An ordered publisher pauses a key after a failure until told to resume.
                self.publisher.resume_publish(self.topic_path, ordering_key)
                with self._lock:
                    self.stats.publish_failures += 1
                continue
            published.append(event_id)
            delay = datetime.now(UTC) - committed_at
            with self._lock:
                self.delays.record_value(max(1, int(delay.total_seconds() * 1_000_000)))
        if published:
            self.runner.run(_stamp, published)
        with self._lock:
            self.stats.published += len(published)
            self.stats.batches += 1
        return len(published)

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; errors are logged and retried after a pause."""
        while not stop.is_set():
            try:
                stamped = self.relay_once()
            except Exception:  # Spanner or Pub/Sub unreachable: keep trying, say so
                log.exception("relay pass failed; retrying")
                stop.wait(1.0)
                continue
            if stamped < self.batch_size:
                stop.wait(self.poll_interval)

    def snapshot_stats(self) -> dict[str, Any]:
        with self._lock:
            return self.stats.as_dict(self.delays)


def _stamp(transaction: Any, event_ids: list[str]) -> None:
    transaction.update(
        "Outbox",
        ("EventId", "PublishedAt"),
        [(event_id, spanner.COMMIT_TIMESTAMP) for event_id in event_ids],
    )
