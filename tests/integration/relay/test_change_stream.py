"""The Spanner emulator serves change streams (docs/relay.md weighs one against polling): a
change stream on ``Outbox`` yields a data change record for a row committed after the query
started."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.shared.transactions import TransactionRunner
from tests.fixtures.relay import add_outbox_row

QUERY = """SELECT ChangeRecord FROM READ_{stream}(
  start_timestamp => @start, end_timestamp => @end, partition_token => @token,
  heartbeat_milliseconds => 1000)"""


def test_a_change_stream_on_the_outbox_reports_a_committed_row(
    database: Any, runner: TransactionRunner
) -> None:
    from google.cloud import spanner

    stream = f"RelayProbe{uuid.uuid4().hex[:8]}"
    database.update_ddl([f"CREATE CHANGE STREAM {stream} FOR Outbox"]).result(60)
    try:
        start = datetime.now(UTC)
        types = {
            "start": spanner.param_types.TIMESTAMP,
            "end": spanner.param_types.TIMESTAMP,
            "token": spanner.param_types.STRING,
        }

        def read(token: str | None, seconds: float) -> list[Any]:
            params = {"start": start, "end": start + timedelta(seconds=seconds), "token": token}
            with database.snapshot() as snapshot:
                rows = snapshot.execute_sql(QUERY.format(stream=stream), params, types)
                return [row[0] for row in rows]

        # The first query (no token) answers the partitions to read.
        tokens = [
            partition[0]
            for records in read(None, 10)
            for record in records
            for children in record[2]
            for partition in children[2]
        ]
        assert tokens
        seen: list[str] = []

        def follow(token: str) -> None:
            seen.extend(str(record) for record in read(token, 4))

        readers = [threading.Thread(target=follow, args=(token,)) for token in tokens]
        for reader in readers:
            reader.start()
        event_id = add_outbox_row(runner)
        for reader in readers:
            reader.join(30)
        assert any(event_id in record for record in seen)
    finally:
        database.update_ddl([f"DROP CHANGE STREAM {stream}"]).result(60)
