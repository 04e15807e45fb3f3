"""A running relay whose link to Spanner is cut backs off (its /stats says so) instead of
spinning, and once the link heals it publishes every transfer committed meanwhile."""

from __future__ import annotations

from typing import Any

from caplab.local.launcher import RunningService
from tests.fixtures.fanout import eventually
from tests.fixtures.relay import SpannerLink, Transfer, pull_until, relay_stats, values
from tests.fixtures.services import ServiceRunner


def test_the_relay_backs_off_while_spanner_is_cut_and_loses_nothing(
    services: ServiceRunner,
    spanner_link: SpannerLink,
    event_tap: str,
    transfer: Transfer,
) -> None:
    env = {
        "SPANNER_EMULATOR_HOST": spanner_link.address,
        "CAPLAB_RELAY_CALL_TIMEOUT": "1s",
        "CAPLAB_RELAY_BACKOFF_MAX": "2s",
        "CAPLAB_RELAY_IDLE_POLL_INTERVAL": "100ms",
        # Long enough that the relay keeps leading through the cut: the back-off shown is
        # the relay loop's own.
        "CAPLAB_RELAY_LEASE": "60s",
    }
    with services.restartable("relay", env) as relay:

        def leading(relay: RunningService = relay) -> dict[str, Any] | None:
            stats = relay_stats(relay)
            return stats if stats["lease"]["leader"] else None

        eventually(leading)
        spanner_link.cut()
        try:
            # The ledger reaches Spanner directly: transfers commit while the relay cannot see.
            committed = [transfer(amount) for amount in range(1, 11)]

            def backing_off() -> dict[str, Any] | None:
                backoff = relay_stats(relay)["backoff"]
                return backoff if backoff["consecutive_failures"] >= 3 else None

            during = eventually(backing_off, timeout=60)
            published_during = relay_stats(relay)["published"]
        finally:
            spanner_link.heal()
        assert during["current_s"] <= 2.0
        assert "DeadlineExceeded" in during["last_error"]

        seen = set(values(pull_until(event_tap, set(committed), "transfer_id"), "transfer_id"))

        def recovered() -> dict[str, Any] | None:
            stats = relay_stats(relay)
            return stats if stats["backoff"]["consecutive_failures"] == 0 else None

        after = eventually(recovered, timeout=60)
    assert set(committed) <= seen
    assert after["published"] >= published_during + len(committed)
