"""``caplab dlq replay SUBSCRIPTION``: move dead-lettered messages back to their source topic.

``SUBSCRIPTION`` is one of the topology's dead-letter pull subscriptions, named after its
dead-letter topic (``activity-projector-dead-letter``, ``notifier-dead-letter``, ...); the
source topic is the topic of the push subscriptions that dead-letter into it
(``transfer-events``). Each message pulled is published again to the source topic with its
data, its ordering key and its own attributes — without the bookkeeping added when it was
dead-lettered (Pub/Sub's ``CloudPubSubDeadLetter*``, and the ``dead_letter_reason``,
``source_subscription`` and ``source_message_id`` of caplab's consumers) — and the dead letter
is acknowledged only once Pub/Sub has acknowledged the republish. A message whose republish
fails stays in the dead-letter subscription (Pub/Sub offers it again after its ack deadline)
and the command exits non-zero. It stops when a pull finds nothing, or after
``--max-messages``.

Poison — a message a consumer dead-lettered itself because it cannot be decoded (it carries
``dead_letter_reason``) — is left where it is unless ``--include-poison``: replaying it fails
the same way until the consumer changes.

The source topic feeds every subscription on it, so a replay redelivers to all of its
consumers, not just the one that dead-lettered: each must be idempotent (docs/relay.md).

Where it acts: the emulator when ``PUBSUB_EMULATOR_HOST`` is set (``eval "$(caplab emulators
env)"``), otherwise Google Cloud with Application Default Credentials in ``--project``
(default ``$GOOGLE_CLOUD_PROJECT``). Needs ``pubsub.subscriber`` on the subscription and
``pubsub.publisher`` on the topic.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from caplab.core.environment import GcpSettings, config_from
from caplab.core.errors import CaplabError
from caplab.core.topology import TOPOLOGY, Topology

if TYPE_CHECKING:
    from google.cloud import pubsub_v1
    from google.pubsub_v1.types import PubsubMessage, ReceivedMessage

DEAD_LETTER_ATTRIBUTES = ("dead_letter_reason", "source_subscription", "source_message_id")
"""What caplab's push consumers add to a poison message they dead-letter themselves."""
PUBSUB_DEAD_LETTER_PREFIX = "CloudPubSubDeadLetter"
"""The prefix of what Pub/Sub adds to a message it dead-letters."""
POISON_MARK = "dead_letter_reason"
HIDE_SECONDS = 600
"""While a run lasts, left-in-place poison is hidden this long (Pub/Sub's maximum ack
deadline), then offered again at the end of the run."""


def source_topic(subscription: str, topology: Topology = TOPOLOGY) -> str:
    """The topic whose subscriptions dead-letter into ``subscription``."""
    held = {s.name: s.topic for s in topology.dead_letter_subscriptions()}
    if subscription not in held:
        raise CaplabError(
            f"{subscription!r} is not a dead-letter subscription; choose one of {sorted(held)}"
        )
    sources = {s.topic for s in topology.subscriptions if s.dead_letter_topic == held[subscription]}
    if len(sources) != 1:  # the topology gives each dead-letter topic one source topic
        raise CaplabError(f"{subscription!r} collects from {sorted(sources)}: name one")
    return sources.pop()


def original_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """A dead letter's attributes without what dead-lettering added."""
    return {
        key: value
        for key, value in attributes.items()
        if key not in DEAD_LETTER_ATTRIBUTES and not key.startswith(PUBSUB_DEAD_LETTER_PREFIX)
    }


def is_poison(message: PubsubMessage) -> bool:
    return POISON_MARK in message.attributes


@dataclass
class ReplayResult:
    replayed: int = 0
    failed: int = 0
    poison_left: int = 0


def replay(
    subscriber: pubsub_v1.SubscriberClient,
    publisher: pubsub_v1.PublisherClient,
    subscription_path: str,
    topic_path: str,
    *,
    max_messages: int | None = None,
    include_poison: bool = False,
    batch: int = 100,
    wait: float = 5.0,
    timeout: float = 30.0,
) -> ReplayResult:
    """Republish the dead letters of ``subscription_path`` to ``topic_path``, acknowledging
    each only after its republish was acknowledged (see the module docstring). A pull that
    finds nothing within ``wait`` seconds ends the run; each republish may take ``timeout``."""
    from google.api_core.exceptions import DeadlineExceeded

    result = ReplayResult()
    hidden: list[str] = []
    try:
        while max_messages is None or result.replayed < max_messages:
            wanted = batch if max_messages is None else min(batch, max_messages - result.replayed)
            try:
                response = subscriber.pull(
                    subscription=subscription_path, max_messages=wanted, timeout=wait
                )
            except DeadlineExceeded:  # nothing arrived within the pull's deadline
                break
            received = list(response.received_messages)
            if not received:
                break
            to_send, poison = [], []
            for message in received:
                if include_poison or not is_poison(message.message):
                    to_send.append(message)
                else:
                    poison.append(message.ack_id)
            if poison:
                subscriber.modify_ack_deadline(
                    subscription=subscription_path,
                    ack_ids=poison,
                    ack_deadline_seconds=HIDE_SECONDS,
                )
                hidden.extend(poison)
            acked, failed = _republish(publisher, topic_path, to_send, timeout)
            if acked:
                subscriber.acknowledge(subscription=subscription_path, ack_ids=acked)
            result.replayed += len(acked)
            result.failed += failed
            if failed:  # Pub/Sub refuses the source topic now: leave the rest for later
                break
    finally:
        if hidden:  # offered again at once, for a later run or another reader
            subscriber.modify_ack_deadline(
                subscription=subscription_path, ack_ids=hidden, ack_deadline_seconds=0
            )
    result.poison_left = len(hidden)
    return result


def _republish(
    publisher: pubsub_v1.PublisherClient,
    topic_path: str,
    received: list[ReceivedMessage],
    timeout: float,
) -> tuple[list[str], int]:
    """Publish each message; the ack ids of those Pub/Sub acknowledged, and how many failed."""
    pending = [
        (
            r,
            publisher.publish(
                topic_path,
                r.message.data,
                ordering_key=r.message.ordering_key,
                **original_attributes(r.message.attributes),
            ),
        )
        for r in received
    ]
    acked: list[str] = []
    failed = 0
    for r, future in pending:
        try:
            future.result(timeout=timeout)
        except Exception:
            failed += 1
            if r.message.ordering_key:
                publisher.resume_publish(topic_path, r.message.ordering_key)
            continue
        acked.append(r.ack_id)
    return acked, failed


def register(subparsers: Any) -> None:
    dlq = subparsers.add_parser("dlq", help="dead-letter subscriptions: replay what landed there")
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    parser = actions.add_parser(
        "replay",
        help="move a dead-letter subscription's messages back to their source topic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    choices = [s.name for s in TOPOLOGY.dead_letter_subscriptions()]
    parser.add_argument("subscription", metavar="SUBSCRIPTION", help=", ".join(choices))
    parser.add_argument(
        "--project", help="Google Cloud project (default: $GOOGLE_CLOUD_PROJECT, or the local one)"
    )
    parser.add_argument("--max-messages", type=int, help="stop after this many messages")
    parser.add_argument(
        "--include-poison",
        action="store_true",
        help="replay messages a consumer dead-lettered as undecodable too",
    )
    parser.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from google.cloud import pubsub_v1

    if args.max_messages is not None and args.max_messages < 1:
        raise CaplabError("--max-messages must be at least 1")
    topic = source_topic(args.subscription)
    settings = GcpSettings.from_config(config_from())
    project = args.project or settings.project
    subscription_path = f"projects/{project}/subscriptions/{args.subscription}"
    topic_path = f"projects/{project}/topics/{topic}"
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    where = f"the Pub/Sub emulator at {emulator}" if emulator else "Google Cloud"
    print(f"replaying {subscription_path} -> {topic_path} on {where}")
    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    try:
        result = replay(
            subscriber,
            publisher,
            subscription_path,
            topic_path,
            max_messages=args.max_messages,
            include_poison=args.include_poison,
        )
    finally:
        subscriber.close()
    print(
        f"replayed {result.replayed}; failed {result.failed} (left in place); "
        f"poison left in place {result.poison_left}"
    )
    if result.failed:
        raise CaplabError(f"{result.failed} messages could not be republished: run again later")
    return 0
