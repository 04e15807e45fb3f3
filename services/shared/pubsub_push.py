"""Receiving Pub/Sub push deliveries: envelope, authentication, acknowledgement, poison.

A push handler built with :func:`consume` answers:

- **204** (ack) only after the consumer's effect is durable;
- **503** when the effect failed for a reason that may pass (a downstream is unavailable):
  Pub/Sub redelivers with the subscription's retry policy and, after
  ``max_delivery_attempts``, moves the message to the dead-letter topic itself;
- **204 after publishing the message to the subscription's dead-letter topic** when the
  payload can never be decoded (a poison message). Answering an error instead would cost
  ``max_delivery_attempts`` redeliveries with backoff (minutes) and, since these
  subscriptions are ordered, would hold back every later event of the same ordering key for
  that whole time. If the dead-letter publish itself fails the answer is 503, so nothing is
  lost. The dead-lettered copy keeps data and attributes and adds ``dead_letter_reason``,
  ``source_subscription`` and ``source_message_id``.
- **400** (problem+json) when the body is not a push envelope at all;
- **401** when push authentication is configured and the request's OIDC token is missing or
  not from the expected service account for the expected audience.

Production vs the emulator: Pub/Sub signs each push with an OIDC token of the subscription's
service account and sends ``deliveryAttempt`` when a dead-letter policy is set. The emulator
sends neither (docs/local-vs-cloud.md): locally the
:class:`~services.shared.oidc.OidcVerifier` has no audience and verifies nothing, and
``delivery_attempt`` is ``None``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request, Response

from services.shared.deadline import run_with_deadline
from services.shared.events import TransferCommitted, UndecodableEvent
from services.shared.oidc import OidcVerifier
from services.shared.problems import Problem, unauthenticated

if TYPE_CHECKING:
    from google.cloud import pubsub_v1

    from caplab.core.environment import GcpSettings
    from caplab.core.topology import PushSubscription

log = logging.getLogger(__name__)


class InvalidEnvelope(ValueError):
    """The request body is not a Pub/Sub push envelope."""


@dataclass(frozen=True)
class PushMessage:
    message_id: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    subscription: str
    delivery_attempt: int | None
    """Present in production when the subscription has a dead-letter policy; the emulator
    never sends it."""

    @classmethod
    def from_envelope(cls, body: bytes) -> PushMessage:
        try:
            envelope = json.loads(body)
            message = envelope["message"]
            return cls(
                message_id=str(message.get("messageId") or message["message_id"]),
                data=base64.b64decode(message.get("data", ""), validate=True),
                attributes=dict(message.get("attributes") or {}),
                ordering_key=str(message.get("orderingKey", "")),
                subscription=str(envelope.get("subscription", "")),
                delivery_attempt=envelope.get("deliveryAttempt"),
            )
        except (KeyError, TypeError, AttributeError, ValueError, binascii.Error) as error:
            raise InvalidEnvelope(f"not a Pub/Sub push envelope: {error}") from error


@dataclass
class DeadLetters:
    """Publishes poison messages to a subscription's dead-letter topic, waiting at most
    ``deadline`` seconds (the service's own request deadline) for Pub/Sub to take one."""

    publisher: pubsub_v1.PublisherClient
    settings: GcpSettings
    deadline: float

    async def publish(
        self, subscription: PushSubscription, message: PushMessage, reason: str
    ) -> None:
        attributes = {
            **message.attributes,
            "dead_letter_reason": reason[:1024],
            "source_subscription": subscription.name,
            "source_message_id": message.message_id,
        }
        future = self.publisher.publish(
            self.settings.topic_path(subscription.dead_letter_topic), message.data, **attributes
        )
        await run_with_deadline(self.deadline, future.result)


Effect = Callable[[TransferCommitted, PushMessage], Awaitable[None]]


async def consume(
    request: Request,
    subscription: PushSubscription,
    auth: OidcVerifier,
    dead_letters: DeadLetters,
    effect: Effect,
) -> Response:
    """Handle one push delivery of ``subscription`` (see the module docstring for the
    answers)."""
    if not await auth.verify_async(request.headers.get("Authorization")):
        return unauthenticated().response()
    body = await request.body()
    try:
        message = PushMessage.from_envelope(body)
    except InvalidEnvelope as error:
        raise Problem(400, "invalid-push-envelope", str(error), field="body") from error
    try:
        event = TransferCommitted.from_json(message.data)
    except UndecodableEvent as error:
        try:
            await dead_letters.publish(subscription, message, f"undecodable: {error}")
        except Exception:
            log.exception("dead-letter publish failed for message %s", message.message_id)
            return _redeliver("the dead-letter topic did not take the poison message")
        log.warning("message %s dead-lettered: %s", message.message_id, error)
        return Response(status_code=204)
    try:
        await effect(event, message)
    except Exception as error:
        log.warning("effect of event %s failed, redelivery expected: %r", event.event_id, error)
        return _redeliver(f"event {event.event_id} was not applied; Pub/Sub redelivers it")
    return Response(status_code=204)


def _redeliver(detail: str) -> Response:
    """503 problem: Pub/Sub treats any non-2xx as a nack and redelivers with backoff."""
    return Problem(503, "redelivery-needed", detail, headers={"Retry-After": "1"}).response()
