"""Run one service the way its container does: uvicorn on ``$PORT``, JSON logs, SIGTERM-safe.

uvicorn already handles SIGTERM as Cloud Run needs (stop accepting, drain in-flight requests,
run the lifespan exit); the drain is bounded to 8 s so it ends inside Cloud Run's 10 s grace
period. After the drain uvicorn re-raises the signal, so the process ends *by* SIGTERM
(status -15, 143 in a shell), as a process Cloud Run stops is expected to; that is not a
failure. The host defaults to loopback on a workstation and to ``0.0.0.0`` where Cloud Run's
``K_SERVICE`` variable is set; ``HOST`` overrides both.

A service whose settings are missing or unsafe where it runs (a
:class:`~caplab.core.errors.SettingError` from its app factory, e.g. no push audience on Cloud
Run) does not start: one CRITICAL log line names the setting, and the process exits with
:data:`EXIT_SETTINGS` (78, ``EX_CONFIG``), so Cloud Run marks the revision as failed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import uvicorn

from caplab.core.errors import SettingError
from services.shared.logging import configure_logging

GRACEFUL_SHUTDOWN_SECONDS = 8
EXIT_SETTINGS = 78
log = logging.getLogger(__name__)


def listen_host(environ: Mapping[str, str]) -> str:
    if "HOST" in environ:
        return environ["HOST"]
    return "0.0.0.0" if "K_SERVICE" in environ else "127.0.0.1"


def run(app_factory: str, environ: Mapping[str, str] | None = None) -> None:
    """Serve ``"module:factory"`` (a callable returning an ASGI app) on ``$PORT`` until
    SIGTERM or SIGINT."""
    env = os.environ if environ is None else environ
    port = int(env.get("PORT", "8080"))
    configure_logging(env.get("LOG_LEVEL", "INFO").upper())
    try:
        uvicorn.run(
            app_factory,
            factory=True,
            host=listen_host(env),
            port=port,
            log_config=None,
            # Cloud Run writes a request log for every request; ours would double it.
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    except SettingError as error:
        log.critical("refusing to start: %s", error)
        raise SystemExit(EXIT_SETTINGS) from None
