"""The relay lease on the Spanner emulator: one holder at a time, epoch + 1 for each new
holder, the old holder stops acting before anyone else can take over, a deposed holder's
stamps are refused, and a released lease is taken at once."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from services.relay.lease import Deposed, Lease
from services.shared.transactions import TransactionRunner


def lead_eventually(lease: Lease, within: float = 20.0) -> int:
    """Step ``lease`` as its keeper thread would, waiting what each step asks, until it
    leads; its epoch (the bound only stops a broken test from hanging)."""
    deadline = time.monotonic() + within
    while (epoch := lease.leader_epoch()) is None:
        assert time.monotonic() < deadline, f"{lease.holder} never became leader"
        wait = lease.step()
        if lease.leader_epoch() is None:
            time.sleep(wait)
    return epoch


def test_the_first_relay_leads_and_the_second_follows(
    make_lease: Callable[..., Lease],
) -> None:
    first, second = make_lease("first", 30.0), make_lease("second", 30.0)
    first.step()
    assert first.leader_epoch() == 1
    wait = second.step()
    assert second.leader_epoch() is None
    assert second.observed is not None
    assert (second.observed.holder, second.observed.epoch) == ("first", 1)
    assert 0 < wait <= second.renew_every
    first.step()  # a renewal keeps the same epoch
    assert first.leader_epoch() == 1
    assert first.snapshot()["acquired"] == 1


def test_an_expired_lease_passes_to_the_next_relay_which_fences_the_old_one_off(
    make_lease: Callable[..., Lease], runner: TransactionRunner
) -> None:
    """The first holder stops renewing (as if paused or killed): the second takes over with
    epoch 2 once the lease expired on Spanner's clock, by which time the first no longer
    considers itself leader; the first's fenced writes are refused and its next renewal
    fails."""
    first, second = make_lease("first", 1.0), make_lease("second", 1.0)
    first.step()
    assert first.leader_epoch() == 1
    assert lead_eventually(second) == 2
    assert first.leader_epoch() is None  # it stopped acting before the take-over
    with pytest.raises(Deposed):
        runner.run(first.fence, 1)
    runner.run(second.fence, 2)
    first.step()
    assert first.leader_epoch() is None
    assert first.snapshot()["lost"] == 1
    assert first.observed is not None
    assert first.observed.holder == "second"


def test_a_released_lease_is_taken_at_once(make_lease: Callable[..., Lease]) -> None:
    first, second = make_lease("first", 60.0), make_lease("second", 60.0)
    first.step()
    second.step()
    assert second.leader_epoch() is None  # held for another minute
    first.release()
    assert first.leader_epoch() is None
    second.step()
    assert second.leader_epoch() == 2
