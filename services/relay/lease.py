"""One relay at a time: a lease row in Spanner, and its epoch as a fencing token.

Any number of relays may run (Cloud Run overlaps revisions during a rollout; an operator may
start a second one); only the holder of the lease publishes. The ``RelayLease`` row holds the
``Holder``, the ``Epoch`` (one more for every new holder) and ``ExpiresAt``. Every decision
about expiry is taken inside Spanner, against Spanner's own clock (``CURRENT_TIMESTAMP()``), so
the relays' clocks never need to agree:

- **acquire**: a relay that finds no row inserts one with epoch 1; one that finds the lease
  expired moves it to itself with epoch + 1 (a conditional ``UPDATE``: of two contenders, one
  matches the row and the other updates nothing);
- **renew**: the holder pushes ``ExpiresAt`` to now + ``duration`` every ``duration / 3``;
  the ``UPDATE`` matches only while the row still names it with its epoch;
- **local validity**: the holder acts only until ``0.9 x duration`` after it *started* its
  last successful renewal; the row's expiry, set later inside Spanner, is at least
  ``duration`` after that start, so the holder stops before any other relay can take over
  (the 10 % absorbs clock-rate drift);
- **fencing**: each stamping transaction first runs an ``UPDATE`` that matches the lease row
  only with the stamping relay's holder name and epoch (:meth:`Lease.fence`). A relay that
  stalled past its lease (a long pause, a slow network) and lost it finds that ``UPDATE``
  matching nothing and its stamp is refused (:class:`Deposed`); Spanner's serializable
  transactions order every stamp before or after the take-over, never across it;
- **release**: on a clean shutdown the holder expires its lease at once, so a successor need
  not wait for it.

Followers look again when the lease they saw would expire (at most every ``duration / 3``),
so after the holder is killed the next relay takes over within ``duration`` of its last
renewal. Reads go through :class:`~services.relay.reads.Reads` and writes are DML in the
shared :class:`~services.shared.transactions.TransactionRunner`: none of them spins while
Spanner is unreachable, and failures back off (:class:`~services.relay.pacing.Backoff`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.relay.pacing import Backoff
from services.relay.reads import Reads, types_of

if TYPE_CHECKING:
    from services.shared.transactions import TransactionRunner

log = logging.getLogger(__name__)

LEASE_NAME = "outbox-relay"
VALIDITY = 0.9
"""Share of the lease duration a holder acts for after starting a successful renewal."""

_OBSERVE = """
SELECT CURRENT_TIMESTAMP(), l.Holder, l.Epoch, l.ExpiresAt
FROM UNNEST([1]) LEFT JOIN RelayLease AS l ON l.Name = @name"""

_CREATE = """
INSERT INTO RelayLease (Name, Holder, Epoch, ExpiresAt)
SELECT @name, @holder, 1, TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL @lease_ms MILLISECOND)
FROM UNNEST([1])
WHERE NOT EXISTS (SELECT 1 FROM RelayLease WHERE Name = @name)"""

_TAKE_OVER = """
UPDATE RelayLease
SET Holder = @holder, Epoch = Epoch + 1,
    ExpiresAt = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL @lease_ms MILLISECOND)
WHERE Name = @name AND Epoch = @epoch AND ExpiresAt <= CURRENT_TIMESTAMP()"""

_RENEW = """
UPDATE RelayLease
SET ExpiresAt = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL @lease_ms MILLISECOND)
WHERE Name = @name AND Holder = @holder AND Epoch = @epoch"""

_RELEASE = """
UPDATE RelayLease SET ExpiresAt = CURRENT_TIMESTAMP()
WHERE Name = @name AND Holder = @holder AND Epoch = @epoch"""

_FENCE = """
UPDATE RelayLease SET Epoch = Epoch
WHERE Name = @name AND Holder = @holder AND Epoch = @epoch"""


class Deposed(RuntimeError):
    """The lease no longer names this relay with this epoch: its write was refused."""


@dataclass(frozen=True)
class Observed:
    """The lease row as a relay last read it."""

    holder: str | None
    epoch: int | None
    expires_in: float
    """Seconds until it expires, on Spanner's clock (zero or less: expired; no row: 0)."""


class Lease:
    def __init__(
        self,
        runner: TransactionRunner,
        reads: Reads,
        holder: str,
        duration: float,
        backoff: Backoff,
        call_timeout: float = 5.0,
        name: str = LEASE_NAME,
    ) -> None:
        self.runner = runner
        self.call_timeout = call_timeout
        self.reads = reads
        self.holder = holder
        self.duration = duration
        self.renew_every = duration / 3
        self.backoff = backoff
        self.name = name
        self.observed: Observed | None = None
        self.acquired = 0
        self.lost = 0
        self._epoch: int | None = None
        self._valid_until = 0.0
        self._changed = threading.Condition()

    # --- what the relay asks ------------------------------------------------------------------

    def leader_epoch(self) -> int | None:
        """The epoch this relay may publish under now, or None while it is not the leader."""
        with self._changed:
            return self._epoch if time.monotonic() < self._valid_until else None

    def wait_for_leadership(self, timeout: float) -> int | None:
        """Block until this relay leads (or ``timeout`` s, or :meth:`interrupt`); its epoch."""
        with self._changed:
            self._changed.wait_for(lambda: self._leads(), timeout=timeout)
        return self.leader_epoch()

    def interrupt(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def fence(self, transaction: Any, epoch: int) -> None:
        """Inside a read-write transaction: refuse it unless this relay still holds ``epoch``."""
        if self._execute(transaction, _FENCE, self._params(epoch=epoch)) != 1:
            raise Deposed(f"the lease is no longer {self.holder!r} at epoch {epoch}")

    def deposed(self, epoch: int) -> None:
        """A fenced write was refused: stop leading at once."""
        with self._changed:
            if self._epoch == epoch:
                self._lose("a stamp was fenced off: another relay holds the lease")

    # --- the keeper ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Keep acquiring or renewing the lease until ``stop`` (then see :meth:`release`)."""
        while not stop.is_set():
            try:
                wait = self.step()
                self.backoff.succeeded()
            except Exception as error:  # Spanner unreachable or refusing: back off, say so
                wait = self.backoff.failed(error)
                log.warning("lease %s: %s; retrying in %.2fs", self.name, error, wait)
            stop.wait(wait)

    def step(self) -> float:
        """One round: renew the lease if held, else try to acquire it; seconds to the next."""
        epoch = self._epoch
        if epoch is not None:
            started = time.monotonic()
            if self._write(_RENEW, epoch=epoch):
                self._hold(epoch, started)
                return self.renew_every
            with self._changed:
                self._lose("renewal refused: another relay holds the lease")
        observed = self._observe()
        started = time.monotonic()
        if observed.epoch is None:
            acquired = 1 if self._write(_CREATE) else None
        elif observed.expires_in <= 0:
            taken = self._write(_TAKE_OVER, epoch=observed.epoch)
            acquired = observed.epoch + 1 if taken else None
        else:
            acquired = None
        if acquired is not None:
            self._hold(acquired, started)
            return self.renew_every
        # Held by another relay (or another contender won just now): look again when it
        # would expire, and at least every renewal period so a release is noticed.
        return min(self.renew_every, max(observed.expires_in, 0.0) + 0.01)

    def release(self) -> None:
        """Expire the lease now if this relay holds it (best effort: on failure it simply
        expires on its own)."""
        epoch = self.leader_epoch()
        if epoch is None:
            return
        with self._changed:
            self._valid_until = 0.0
        try:
            self._write(_RELEASE, epoch=epoch)
            log.info("released lease %s at epoch %d", self.name, epoch)
        except Exception as error:
            log.warning("could not release lease %s: %s", self.name, error)

    def snapshot(self) -> dict[str, Any]:
        with self._changed:
            epoch = self._epoch
            remaining = self._valid_until - time.monotonic()
            observed = self.observed
        leads = epoch is not None and remaining > 0
        return {
            "name": self.name,
            "holder": self.holder,
            "leader": leads,
            "epoch": epoch if leads else None,
            "last_epoch": epoch,
            "valid_for_s": round(remaining, 3) if leads else 0.0,
            "duration_s": self.duration,
            "acquired": self.acquired,
            "lost": self.lost,
            "observed": None
            if observed is None
            else {
                "holder": observed.holder,
                "epoch": observed.epoch,
                "expires_in_s": round(observed.expires_in, 3),
            },
            "backoff": self.backoff.as_dict(),
        }

    # --- internals ----------------------------------------------------------------------------

    def _leads(self) -> bool:
        return self._epoch is not None and time.monotonic() < self._valid_until

    def _hold(self, epoch: int, started: float) -> None:
        with self._changed:
            if epoch != self._epoch:
                self.acquired += 1
                log.info("lease %s acquired by %s at epoch %d", self.name, self.holder, epoch)
            self._epoch = epoch
            self._valid_until = started + VALIDITY * self.duration
            self._changed.notify_all()

    def _lose(self, why: str) -> None:
        if self._epoch is not None:
            self.lost += 1
            log.warning("lease %s lost at epoch %d: %s", self.name, self._epoch, why)
        self._epoch = None
        self._valid_until = 0.0

    def _observe(self) -> Observed:
        now, holder, epoch, expires_at = self.reads.query(_OBSERVE, {"name": self.name})[0]
        observed = Observed(
            holder=holder,
            epoch=epoch,
            expires_in=0.0 if expires_at is None else (expires_at - now).total_seconds(),
        )
        self.observed = observed
        return observed

    def _params(self, **extra: str | int) -> dict[str, str | int]:
        return {
            "name": self.name,
            "holder": self.holder,
            "lease_ms": int(self.duration * 1000),
            **extra,
        }

    def _write(self, sql: str, **extra: str | int) -> bool:
        """Run one lease statement in its own transaction; whether it matched the row."""
        params = self._params(**extra)
        return self.runner.run(lambda transaction: self._execute(transaction, sql, params)) == 1

    def _execute(self, transaction: Any, sql: str, params: dict[str, str | int]) -> int:
        """One DML statement, bounded by ``call_timeout`` and not retried here (a failure
        fails the transaction, and the caller backs off)."""
        used = {name: value for name, value in params.items() if f"@{name}" in sql}
        return transaction.execute_update(
            sql,
            params=used,
            param_types=types_of(used),
            retry=None,
            timeout=self.call_timeout,
        )
