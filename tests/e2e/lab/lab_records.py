"""What a run's records.json shows by itself, for the lab tests to check the report against:
figures recomputed from the client's own observations, not from the checkers."""

from __future__ import annotations

from typing import Any

Records = list[dict[str, Any]]


def versions_observed(records: Records, read: dict[str, Any]) -> tuple[int, int]:
    """(lowest, highest) version of ``read``'s account the client's own timings allow: the
    creation (version 1) plus every transfer touching it that returned ok before the read
    was sent, up to every transfer not rejected that was sent before the read returned."""
    touching = [
        r
        for r in records
        if r["kind"] == "transfer" and read["account"] in (r["account"], r["other"])
    ]
    done = sum(r["outcome"] == "ok" and r["returned"] < read["invoked"] for r in touching)
    started = sum(r["outcome"] != "rejected" and r["invoked"] < read["returned"] for r in touching)
    return 1 + done, 1 + started


def visible_samples(records: Records) -> int:
    """(activity read, transfer) pairs where the read shows a transfer of the run, touching
    the read's account, that committed before the read was sent: each one a visible sample
    of the t-visibility curve. Fails if a feed shows anything else."""
    committed = {  # an unknown outcome resolved as ok committed too
        r["transfer_id"]: r
        for r in records
        if r["kind"] == "transfer" and "ok" in (r["outcome"], r["resolved"])
    }
    visible = 0
    for read in (r for r in records if r["kind"] == "activity" and r["outcome"] == "ok"):
        for transfer_id, _ in read["activity"]:
            transfer = committed[transfer_id]
            assert read["account"] in (transfer["account"], transfer["other"]), transfer_id
            at = transfer["commit_timestamp"]
            visible += at is not None and at <= read["wall_invoked"]
    return visible
