"""The payout saga's settings, part of the ledger's (read once, at start-up):

- ``CAPLAB_BANK_URL``: the bank's base URL. Unset (the default), the ledger has no payout
  endpoints.
- ``CAPLAB_BANK_TIMEOUT`` (``5s``): one call to the bank; past it the outcome is unknown.
- ``CAPLAB_BANK_MAX_ATTEMPTS`` (5): payment requests sent before a "never received" may
  compensate.
- ``CAPLAB_BANK_ARRIVAL_WINDOW`` (``1m``, at least the timeout): how long after it was sent a
  payment request may still reach the bank.
- ``CAPLAB_BANK_FAILURE_THRESHOLD`` (5), ``_RESET_TIMEOUT`` (``5s``), ``_MAX_CONCURRENT`` (10):
  the bank's breaker and bulkhead.
- ``CAPLAB_PAYOUTS_SWEEP_INTERVAL`` (``30s``): how often this instance looks for forgotten
  payouts; ``CAPLAB_PAYOUTS_STALE_AFTER`` (``2m``): an open payout untouched this long is
  re-enqueued.
- ``CAPLAB_LEDGER_URL`` (locally ``http://127.0.0.1:$PORT``; required on Cloud Run): the
  ledger's own URL, where Cloud Tasks delivers payout tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from starlette.config import Config

from caplab.core.durations import format_duration, parse_duration
from services.shared.oidc import OidcVerifier
from services.shared.outbound import TaskAuth, base_url, own_url
from services.shared.resilience import DownstreamPolicy


@dataclass(frozen=True)
class PayoutSettings:
    bank_url: str | None
    """``None``: no bank configured, so the ledger mounts no payout endpoint and sweeps
    nothing."""
    bank_policy: DownstreamPolicy
    bank_max_attempts: int
    bank_arrival_window: timedelta
    """A "never received" (404) from the bank's status query is believed — and compensated —
    only once the last payment request is this old: the bank's contract must promise that a
    request it has not received by then is never executed (e.g. by refusing stale ones)."""
    self_url: str
    """Where Cloud Tasks delivers payout tasks: never derived from a request's Host header."""
    task_auth: TaskAuth
    task_invoker_auth: OidcVerifier
    sweep_interval: timedelta
    stale_after: timedelta

    @classmethod
    def from_config(cls, config: Config) -> PayoutSettings:
        policy = DownstreamPolicy.from_config(config, "CAPLAB_BANK", max_concurrent=10)
        settings = cls(
            bank_url=config("CAPLAB_BANK_URL", cast=base_url, default=None),
            bank_policy=policy,
            bank_max_attempts=config("CAPLAB_BANK_MAX_ATTEMPTS", cast=int, default=5),
            bank_arrival_window=config(
                "CAPLAB_BANK_ARRIVAL_WINDOW", cast=parse_duration, default="1m"
            ),
            self_url=own_url(config, "CAPLAB_LEDGER_URL", "ledger"),
            task_auth=TaskAuth(
                service_account=config("CAPLAB_TASKS_SERVICE_ACCOUNT", default=None),
                audience=config("CAPLAB_TASKS_AUDIENCE", default=None),
            ),
            task_invoker_auth=OidcVerifier.from_config(config, "CAPLAB_TASKS_INVOKER"),
            sweep_interval=config(
                "CAPLAB_PAYOUTS_SWEEP_INTERVAL", cast=parse_duration, default="30s"
            ),
            stale_after=config("CAPLAB_PAYOUTS_STALE_AFTER", cast=parse_duration, default="2m"),
        )
        if settings.bank_max_attempts < 1:
            raise ValueError("CAPLAB_BANK_MAX_ATTEMPTS must be at least 1")
        if settings.bank_arrival_window.total_seconds() < policy.timeout:
            raise ValueError(
                f"CAPLAB_BANK_ARRIVAL_WINDOW ({format_duration(settings.bank_arrival_window)}) "
                f"must be at least CAPLAB_BANK_TIMEOUT ({policy.timeout}s)"
            )
        if settings.sweep_interval <= timedelta(0):
            raise ValueError("CAPLAB_PAYOUTS_SWEEP_INTERVAL must be positive")
        return settings
