"""The relay's Spanner database: read-write transactions on a session of each thread's own.

Why: ``Database.run_in_transaction`` in google-cloud-spanner 3.71 marks the calling thread as
"in a transaction" *before* it checks a session out of the pool, and clears the mark in a
``finally`` that only covers what comes after the checkout (``database.py``). When the
checkout itself fails — Spanner unreachable: the default pool verifies every pooled session
with a ``GetSession`` call, retried for 30 s — the mark stays, and every later transaction on
that thread fails at once with "Spanner does not support nested transactions": the relay's
lease keeper would never renew again after its first outage. :class:`RelayDatabase` overrides
``run_in_transaction`` to run the library's own ``Session.run_in_transaction`` on a session
the thread keeps (created on first use, replaced when Spanner no longer knows it), which also
saves the per-transaction ``GetSession`` call. Sessions carry the database role
(``CAPLAB_SPANNER_DATABASE_ROLE``) as every other session does. Everything else is the
library's :class:`~google.cloud.spanner_v1.database.Database`.
"""

from __future__ import annotations

import threading
from typing import Any

from google.api_core.exceptions import NotFound
from google.cloud.spanner_v1.database import Database


class RelayDatabase(Database):
    def __init__(self, database_id: str, instance: Any, database_role: str | None = None) -> None:
        super().__init__(database_id, instance, database_role=database_role)
        self._own = threading.local()

    def run_in_transaction(self, func: Any, *args: Any, **kw: Any) -> Any:
        session = getattr(self._own, "session", None)
        if session is None:
            session = self.session()
            session.create()
            self._own.session = session
        try:
            return session.run_in_transaction(func, *args, **kw)
        except NotFound:  # the session is gone (idle an hour, or an emulator restart)
            self._own.session = None
            raise
