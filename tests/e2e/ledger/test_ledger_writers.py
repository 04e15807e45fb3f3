"""Every version the ledger reports names the operation that wrote it (``last_writer``):
what lets the lab's checker attribute each version read to its writer."""

from __future__ import annotations

import httpx

from tests.e2e.ledger.conftest import OpenAccount, transfer


def test_reads_snapshots_and_transfers_name_the_writer_of_each_version(
    client: httpx.Client, open_account: OpenAccount
) -> None:
    """A new account's version 1 was written by ``create``; a transfer names the writers of
    the versions it replaced and becomes the writer of both new ones, in strong, stale and
    cached reads and in snapshots alike."""
    a, b = open_account(100), open_account(0)
    assert client.get(f"/v1/accounts/{a}").json()["last_writer"] == "create"
    first = transfer(client, a, b, 30).json()
    assert (first["from_previous_writer"], first["to_previous_writer"]) == ("create", "create")
    second = transfer(client, b, a, 10).json()
    assert second["from_previous_writer"] == second["to_previous_writer"] == first["transfer_id"]
    for consistency in ("strong", "bounded", "cached"):
        read = client.get(f"/v1/accounts/{a}", params={"consistency": consistency}).json()
        assert (read["version"], read["last_writer"]) == (3, second["transfer_id"]), consistency
    snapshot = client.get("/v1/snapshot", params={"accounts": f"{a},{b}"}).json()
    assert [(s["version"], s["last_writer"]) for s in snapshot["accounts"]] == [
        (3, second["transfer_id"]),
        (3, second["transfer_id"]),
    ]
