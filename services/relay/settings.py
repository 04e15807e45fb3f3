"""The relay's settings, read once from the environment (``CAPLAB_RELAY_*``)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from caplab.core.durations import parse_duration
from caplab.core.environment import GcpSettings, config_from
from services.shared.transactions import TransactionSettings


@dataclass(frozen=True)
class RelaySettings:
    gcp: GcpSettings
    transactions: TransactionSettings
    poll_interval: timedelta
    """``CAPLAB_RELAY_POLL_INTERVAL`` (50ms): the wait after a poll that found rows."""
    idle_poll_interval: timedelta
    """``CAPLAB_RELAY_IDLE_POLL_INTERVAL`` (1s): the longest wait between two polls, reached
    by doubling after each empty poll."""
    backoff_initial: timedelta
    """``CAPLAB_RELAY_BACKOFF_INITIAL`` (250ms): the first back-off bound after a failure."""
    backoff_max: timedelta
    """``CAPLAB_RELAY_BACKOFF_MAX`` (10s): the cap of the back-off while Spanner or Pub/Sub
    fail (also how late, at most, the relay notices they are back)."""
    call_timeout: timedelta
    """``CAPLAB_RELAY_CALL_TIMEOUT`` (5s): the deadline of each Spanner read and of each
    publish (the client's retries included)."""
    lease: timedelta
    """``CAPLAB_RELAY_LEASE`` (10s): the leader lease; a killed leader is replaced within it."""
    holder: str
    """``CAPLAB_RELAY_HOLDER``: this process's name in the lease (host, pid and a random
    suffix by default, so a restarted process is a new holder)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RelaySettings:
        config = config_from(environ)

        def duration(name: str, default: str) -> timedelta:
            return config(name, cast=parse_duration, default=default)

        return cls(
            gcp=GcpSettings.from_config(config),
            transactions=TransactionSettings.from_config(config),
            poll_interval=duration("CAPLAB_RELAY_POLL_INTERVAL", "50ms"),
            idle_poll_interval=duration("CAPLAB_RELAY_IDLE_POLL_INTERVAL", "1s"),
            backoff_initial=duration("CAPLAB_RELAY_BACKOFF_INITIAL", "250ms"),
            backoff_max=duration("CAPLAB_RELAY_BACKOFF_MAX", "10s"),
            call_timeout=duration("CAPLAB_RELAY_CALL_TIMEOUT", "5s"),
            lease=duration("CAPLAB_RELAY_LEASE", "10s"),
            holder=config(
                "CAPLAB_RELAY_HOLDER",
                default=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            ),
        )
