"""Back-off grows exponentially with full jitter up to its cap and resets on success; the poll
interval stretches while idle and snaps back when rows arrive; the settings parse."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.relay.pacing import Backoff, PollInterval
from services.relay.settings import RelaySettings


def test_backoff_delays_stay_within_the_growing_bound_and_the_cap() -> None:
    backoff = Backoff(initial=0.25, maximum=4.0)
    bounds = [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for attempt, bound in enumerate(bounds, start=1):
        delay = backoff.failed(ConnectionError("down"))
        assert 0.0 <= delay <= bound
        assert backoff.failures == attempt
    state = backoff.as_dict()
    assert state["consecutive_failures"] == len(bounds)
    assert state["last_error"] == "ConnectionError: down"
    backoff.succeeded()
    assert backoff.as_dict()["consecutive_failures"] == 0
    assert backoff.failed(ConnectionError("down again")) <= 0.25


def test_backoff_draws_are_jittered() -> None:
    backoff = Backoff(initial=8.0, maximum=8.0)
    draws = {backoff.failed(TimeoutError()) for _ in range(20)}
    assert len(draws) > 1


def test_the_poll_interval_doubles_while_idle_up_to_the_idle_bound_and_resets() -> None:
    poll = PollInterval(busy=0.05, idle=1.0)
    waits = [poll.after(0) for _ in range(6)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert poll.after(3) == 0.05


def test_settings_defaults_and_overrides() -> None:
    defaults = RelaySettings.from_environ({})
    assert defaults.poll_interval == timedelta(milliseconds=50)
    assert defaults.idle_poll_interval == timedelta(seconds=1)
    assert defaults.lease == timedelta(seconds=10)
    assert defaults.holder != RelaySettings.from_environ({}).holder
    tuned = RelaySettings.from_environ(
        {
            "CAPLAB_RELAY_LEASE": "2s",
            "CAPLAB_RELAY_BACKOFF_MAX": "500ms",
            "CAPLAB_RELAY_HOLDER": "a",
        }
    )
    assert tuned.lease == timedelta(seconds=2)
    assert tuned.backoff_max == timedelta(milliseconds=500)
    assert tuned.holder == "a"
