"""The relay's settings, read once from the environment (``CAPLAB_RELAY_*``)."""

from __future__ import annotations

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
    """How often the relay looks for unpublished Outbox rows while idle."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RelaySettings:
        config = config_from(environ)
        return cls(
            gcp=GcpSettings.from_config(config),
            transactions=TransactionSettings.from_config(config),
            poll_interval=config("CAPLAB_RELAY_POLL_INTERVAL", cast=parse_duration, default="50ms"),
        )
