"""Strong single-use Spanner reads that fail when Spanner is unreachable, instead of spinning.

Why this exists: the client library's ``snapshot().execute_sql`` and ``read`` restart a stream
on ``UNAVAILABLE`` at once and without limit (``_restart_on_unavailable`` in
``google/cloud/spanner_v1/snapshot.py``), so a read issued while Spanner is down (or that
meets an outage midway) busy-loops until Spanner is back: one core at 100 %, and the caller
never gets the error it would back off on. The relay polls Spanner forever, so it reads
through the generated API instead: ``ExecuteStreamingSql`` with no retry and a deadline, on a
session of its own; the result stream is decoded by the library's own
:class:`~google.cloud.spanner_v1.streamed.StreamedResultSet`. Everything a read-write
transaction does goes through the library as usual (DML and commit are unary calls whose
retries back off).

Each thread reads on a session of its own (a session runs one transaction at a time). A
session Spanner deleted (idle for an hour, or an emulator restart) fails one read with
``NotFound`` and that thread's next read creates a new session.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from google.api_core.exceptions import NotFound
from google.cloud.spanner_v1 import (
    CreateSessionRequest,
    ExecuteSqlRequest,
    Session,
    TransactionOptions,
    TransactionSelector,
    param_types,
)
from google.cloud.spanner_v1.streamed import StreamedResultSet
from google.protobuf import struct_pb2

if TYPE_CHECKING:
    from google.cloud.spanner_v1.database import Database

log = logging.getLogger(__name__)

_STRONG = TransactionSelector(
    single_use=TransactionOptions(read_only=TransactionOptions.ReadOnly(strong=True))
)


class Reads:
    """Strong reads on ``database``, each bounded by ``timeout`` seconds and never retried
    here (the caller backs off)."""

    def __init__(self, database: Database, timeout: float) -> None:
        self._database = database
        self._timeout = timeout
        self._metadata = [("google-cloud-resource-prefix", database.name)]
        self._own = threading.local()
        self._sessions: set[str] = set()
        self._lock = threading.Lock()

    def query(self, sql: str, params: dict[str, str | int] | None = None) -> list[list[Any]]:
        """The rows of ``sql`` with ``params`` (``str`` binds STRING, ``int`` binds INT64)."""
        api = self._database.spanner_api
        session = self._session_name()
        request = ExecuteSqlRequest(
            session=session,
            sql=sql,
            transaction=_STRONG,
            params=_struct(params or {}),
            param_types=types_of(params or {}),
        )
        try:
            stream = api.execute_streaming_sql(
                request=request, metadata=self._metadata, retry=None, timeout=self._timeout
            )
            return [list(row) for row in StreamedResultSet(stream)]
        except NotFound:
            self._own.session = None
            with self._lock:
                self._sessions.discard(session)
            raise

    def close(self) -> None:
        """Delete the sessions (best effort: Spanner deletes an idle one after an hour)."""
        with self._lock:
            sessions, self._sessions = self._sessions, set()
        for session in sessions:
            try:
                self._database.spanner_api.delete_session(
                    name=session, metadata=self._metadata, retry=None, timeout=self._timeout
                )
            except Exception as error:
                log.warning("could not delete session %s: %s", session, error)

    def _session_name(self) -> str:
        session: str | None = getattr(self._own, "session", None)
        if session is None:
            # The session carries the database role, as the library's own sessions do.
            role = self._database.database_role
            created = self._database.spanner_api.create_session(
                request=CreateSessionRequest(
                    database=self._database.name, session=Session(creator_role=role or "")
                ),
                metadata=self._metadata,
                retry=None,
                timeout=self._timeout,
            )
            session = self._own.session = created.name
            with self._lock:
                self._sessions.add(session)
        return session


def types_of(params: dict[str, str | int]) -> dict[str, Any]:
    """Spanner parameter types for ``params``: ``int`` is INT64, ``str`` is STRING."""
    return {
        name: param_types.INT64 if isinstance(value, int) else param_types.STRING
        for name, value in params.items()
    }


def _struct(params: dict[str, str | int]) -> struct_pb2.Struct:
    # Spanner's JSON encoding of a query parameter: INT64 travels as a decimal string.
    return struct_pb2.Struct(
        fields={name: struct_pb2.Value(string_value=str(value)) for name, value in params.items()}
    )
