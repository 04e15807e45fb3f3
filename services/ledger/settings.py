"""The ledger's settings, read once from the environment (``CAPLAB_LEDGER_*``, durations such
as ``500ms``, ``10s``, ``1h``; see ``caplab.core.environment``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from caplab.core.durations import parse_duration
from caplab.core.environment import GcpSettings, config_from
from services.shared.oidc import OidcVerifier
from services.shared.transactions import TransactionSettings


@dataclass(frozen=True)
class LedgerSettings:
    gcp: GcpSettings
    transactions: TransactionSettings
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
    push_auth: OidcVerifier
    """Who may push cache invalidations (verified in the cloud; the emulator signs nothing)."""
    callers: OidcVerifier
    """Verifies every caller's ID token (``CAPLAB_CALLER_*``; required on Cloud Run): the
    identity logged with each transfer (:mod:`services.shared.identity`)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> LedgerSettings:
        config = config_from(environ)
        return cls(
            gcp=GcpSettings.from_config(config),
            transactions=TransactionSettings.from_config(config),
            default_staleness=config(
                "CAPLAB_LEDGER_DEFAULT_STALENESS", cast=parse_duration, default="10s"
            ),
            max_staleness=config("CAPLAB_LEDGER_MAX_STALENESS", cast=parse_duration, default="1h"),
            cache_ttl=config("CAPLAB_LEDGER_CACHE_TTL", cast=parse_duration, default="30s"),
            deadline=config("CAPLAB_LEDGER_DEADLINE", cast=parse_duration, default="5s"),
            push_auth=OidcVerifier.from_config(config, "CAPLAB_PUSH"),
            callers=OidcVerifier.from_config(config, "CAPLAB_CALLER", require_email=False),
        )
