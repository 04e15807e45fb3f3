"""The ledger's settings, read once from the environment (``CAPLAB_LEDGER_*``, durations such
as ``500ms``, ``10s``, ``1h``; see ``caplab.core.environment``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from caplab.core.durations import parse_duration
from caplab.core.environment import GcpSettings, config_from
from services.ledger.payouts.settings import PayoutSettings
from services.shared.oidc import OidcVerifier
from services.shared.transactions import TransactionSettings


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text!r} is not a positive integer")
    return value


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
    """How long after its read timestamp a cached balance may be served when no invalidation
    arrives."""
    cache_max_entries: int
    """Balances one instance caches at most (least recently used evicted first): 10,000
    entries of a few hundred bytes each, a few MB."""
    deadline: timedelta
    """Whole-request bound on Spanner work; past it the request is a 503 + Retry-After."""
    push_auth: OidcVerifier
    """Who may push cache invalidations (verified in the cloud; the emulator signs nothing)."""
    payouts: PayoutSettings
    """The bank and the saga's sweeper (``CAPLAB_BANK_*``, ``CAPLAB_PAYOUTS_*``)."""

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
            cache_max_entries=config(
                "CAPLAB_LEDGER_CACHE_MAX_ENTRIES", cast=_positive_int, default="10000"
            ),
            deadline=config("CAPLAB_LEDGER_DEADLINE", cast=parse_duration, default="5s"),
            push_auth=OidcVerifier.from_config(config, "CAPLAB_PUSH"),
            payouts=PayoutSettings.from_config(config),
        )
