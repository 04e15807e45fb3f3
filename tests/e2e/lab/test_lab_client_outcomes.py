"""The lab client against a stand-in ledger process: how each kind of answer (or its absence)
becomes a record's outcome, status and error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager

from emulators.manager import free_port
from loadtest.client import LabClient
from loadtest.pool import open_session
from loadtest.records import ERROR, OK, REJECTED, UNKNOWN, Record

StandIn = Callable[..., AbstractContextManager[str]]


async def _run(url: str, request_timeout: float, *, create: bool) -> dict[str, Record]:
    """Two accounts (when ``create``), then an overdraft, a transfer to a missing account and
    a strong read of account ``a``."""
    async with open_session(4, request_timeout) as session:
        client = LabClient(session, url)
        records = {
            "create": Record(seq=0, kind="create", account="a", intended=0.0),
            "overdraft": Record(seq=1, kind="transfer", account="a", other="b", amount=10**9,
                                intended=0.0),
            "missing": Record(seq=2, kind="transfer", account="a", other="nobody", amount=1,
                              intended=0.0),
            "read": Record(seq=3, kind="strong", account="a", intended=0.0),
        }  # fmt: skip
        if create:
            await client.create_account(records["create"], 100)
            await client.create_account(Record(seq=0, kind="create", account="b", intended=0), 0)
        await client.transfer(records["overdraft"])
        await client.transfer(records["missing"])
        await client.read(records["read"])
    return records


def test_answers_become_ok_rejected_or_error(standin: StandIn) -> None:
    """A created account is OK with its version; an overdraft is REJECTED (its problem type is
    read from the body); a transfer to a missing account is an ERROR naming status and type;
    a read is OK with its balance."""
    with standin() as url:
        records = asyncio.run(_run(url, 5.0, create=True))
    create, overdraft, missing, read = records.values()
    assert (create.outcome, create.status, create.version) == (OK, 201, 1)
    assert (overdraft.outcome, overdraft.status) == (REJECTED, 422)
    assert overdraft.error == "422 /problems/insufficient-funds"
    assert (missing.outcome, missing.status) == (ERROR, 404)
    assert missing.error == "404 /problems/account-not-found"
    assert (read.outcome, read.balance, read.served_by) == (OK, 100, "leader")
    assert all(r.invoked <= r.returned for r in records.values())


def test_lost_answers_make_transfers_unknown_and_reads_errors(standin: StandIn) -> None:
    """Without an answer (a stalled server past the timeout, or a refused connection) a
    transfer may or may not have committed: UNKNOWN; a read simply failed: ERROR."""
    with standin("--stall-at", "0", "--stall-for", "1.5") as url:
        stalled = asyncio.run(_run(url, 0.3, create=True))
    refused = asyncio.run(_run(f"http://127.0.0.1:{free_port()}", 5.0, create=False))
    for records in (stalled, refused):
        assert [records[k].outcome for k in ("overdraft", "missing", "read")] == [
            UNKNOWN, UNKNOWN, ERROR
        ]  # fmt: skip
        assert all(records[k].status is None for k in ("overdraft", "missing", "read"))
    assert stalled["read"].error.startswith(("TimeoutError", "ServerTimeoutError"))
    assert refused["read"].error.startswith("ClientConnectorError")
