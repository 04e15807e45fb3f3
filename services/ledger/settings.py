"""The ledger's settings, read once from the environment (see ``caplab.core.environment``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from caplab.core.durations import parse_duration
from caplab.core.environment import GcpSettings, config_from
from services.shared.oidc import OidcVerifier


@dataclass(frozen=True)
class LedgerSettings:
    gcp: GcpSettings
    default_staleness: timedelta
    """Staleness of exact/bounded reads when the request names none (10 s: the Spanner docs'
    recommended minimum for stale reads to pay off)."""
    max_staleness: timedelta
    """Upper bound a request may ask for; must stay within the database's version retention
    (1 h), beyond which Spanner refuses the read."""
    cache_ttl: timedelta
    """How long a cached balance may be served when no invalidation arrives."""
    deadline: timedelta
    """Whole-request bound on Spanner work; past it the request is a 503 + Retry-After."""
    abort_retry_delay: timedelta
    """Wait before retrying an aborted transaction when Spanner sends no retry hint. The
    client's own default (2^attempt s) stalls badly against the emulator, which aborts every
    concurrent read-write transaction; production Spanner sends a hint, which wins."""
    max_concurrent_transactions: int
    """Read-write transactions one instance runs at once; 0 = no limit. The Spanner emulator
    runs one at a time and aborts the older when another starts, so under open-loop load
    concurrent transfers abort each other into a collapse (measured: at 50 transfers/s, 132
    of 1,000 committed); a limit of 1 turns those aborts into a short queue. Production
    Spanner locks rows instead, and needs no limit."""

    push_auth: OidcVerifier
    """Who may push cache invalidations (verified in the cloud; the emulator signs nothing)."""
    relay_poll_interval: timedelta
    """How often the outbox relay looks for unpublished rows while idle."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LedgerSettings:
        config = config_from(environ)
        return cls(
            gcp=GcpSettings.from_config(config),
            default_staleness=config(
                "LEDGER_DEFAULT_STALENESS", cast=parse_duration, default="10s"
            ),
            max_staleness=config("LEDGER_MAX_STALENESS", cast=parse_duration, default="1h"),
            cache_ttl=config("LEDGER_CACHE_TTL", cast=parse_duration, default="30s"),
            deadline=config("LEDGER_DEADLINE", cast=parse_duration, default="5s"),
            push_auth=OidcVerifier.from_config(config, "CAPLAB_PUSH"),
            relay_poll_interval=config("RELAY_POLL_INTERVAL", cast=parse_duration, default="50ms"),
            abort_retry_delay=config(
                "LEDGER_ABORT_RETRY_DELAY", cast=parse_duration, default="10ms"
            ),
            max_concurrent_transactions=config(
                "LEDGER_MAX_CONCURRENT_TRANSACTIONS", cast=int, default=0
            ),
        )
