"""The push subscriptions that carry data (activity, notifications) survive a one-hour outage
of their backend without dead-lettering: Pub/Sub waits at least ``minimum_backoff`` between two
deliveries of a failing message, so ``max_delivery_attempts`` attempts span at least
``(attempts - 1) x minimum_backoff``, within Pub/Sub's limits (docs/relay.md)."""

from __future__ import annotations

import pytest

from caplab.core.topology import OUTAGE_BUDGET_SECONDS, TOPOLOGY, PushSubscription

DURABLE = [s for s in TOPOLOGY.subscriptions if s.name in ("activity-projector", "notifier")]


def shortest_span_seconds(subscription: PushSubscription) -> int:
    return (subscription.max_delivery_attempts - 1) * subscription.retry.minimum_backoff_seconds


@pytest.mark.parametrize("subscription", DURABLE, ids=lambda s: s.name)
def test_a_one_hour_outage_does_not_dead_letter(subscription: PushSubscription) -> None:
    assert OUTAGE_BUDGET_SECONDS == 3600
    assert shortest_span_seconds(subscription) >= OUTAGE_BUDGET_SECONDS
    # Pub/Sub's limits: 5..100 attempts, backoffs of 0..600 s.
    assert 5 <= subscription.max_delivery_attempts <= 100
    retry = subscription.retry
    assert 0 <= retry.minimum_backoff_seconds <= retry.maximum_backoff_seconds <= 600
