"""``caplab load --workers N``: N generator processes on this machine, one run.

One Python process spends a fraction of a millisecond of CPU per request, which caps the
schedule it keeps. Here each worker is a separate process (``multiprocessing``, spawned, so
nothing of the parent's event loop or connections is inherited) running its
:class:`~loadtest.plan.Part` of the one seeded plan, exactly as a Cloud Run Job task does:

1. every worker creates the run's accounts, measures its clock, and reports the earliest
   instant it could start;
2. the coordinator answers every worker with one start instant (the latest of those), so
   the parts share one schedule;
3. each worker drives its part, writes its shard (:mod:`loadtest.shards`) into the run's
   shard directory, and exits; the coordinator merges the shards (:mod:`loadtest.merge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from rich.console import Console

from caplab.core.errors import CaplabError
from loadtest.auth import IdTokenAuth
from loadtest.config import LoadConfig
from loadtest.plan import Part
from loadtest.runner import Endpoints, run_load
from loadtest.shards import DirectoryStore, write_shard

READY_TIMEOUT = 120.0
"""Seconds a worker may take to start, create the accounts and measure its clock."""


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs (picklable: no sessions, no token cache)."""

    config: LoadConfig
    ledger_url: str
    activity_url: str | None
    replica_url: str | None
    authenticate: bool
    run_id: str
    part: Part
    shard_dir: Path
    clock: str = "host"


def _endpoints(spec: WorkerSpec) -> Endpoints:
    auth = None
    if spec.authenticate:
        auth = IdTokenAuth()
        auth.prefetch(u for u in (spec.ledger_url, spec.activity_url, spec.replica_url) if u)
    return Endpoints(spec.ledger_url, spec.activity_url, auth, spec.replica_url)


def _work(spec: WorkerSpec, channel: Connection) -> None:
    """A worker process: run its part between the two messages of the handshake."""

    async def gate(earliest: float) -> float:
        channel.send(("ready", earliest))
        start = await asyncio.get_running_loop().run_in_executor(None, channel.recv)
        return float(start)

    try:
        result = asyncio.run(
            run_load(
                spec.config,
                _endpoints(spec),
                Console(quiet=True),
                spec.run_id,
                part=spec.part,
                gate=gate,
                clock=spec.clock,
            )
        )
        channel.send(("done", write_shard(result, DirectoryStore(spec.shard_dir))))
    except BaseException as error:
        with contextlib.suppress(OSError):  # the coordinator may be gone already
            channel.send(("failed", f"{type(error).__name__}: {error}"))
        raise


def _receive(
    channel: Connection,
    process: BaseProcess,
    index: int,
    deadline: float | None,
) -> tuple[str, object]:
    while not channel.poll(0.1):
        if not process.is_alive():
            raise CaplabError(f"worker {index} exited with status {process.exitcode}")
        if deadline is not None and time.monotonic() > deadline:
            raise CaplabError(f"worker {index} did not get ready within {READY_TIMEOUT:g} s")
    kind, value = channel.recv()
    if kind == "failed":
        raise CaplabError(f"worker {index} failed: {value}")
    return kind, value


def run_workers(specs: list[WorkerSpec], console: Console) -> list[str]:
    """Run one process per spec through the handshake; the shards they wrote."""
    context = multiprocessing.get_context("spawn")
    channels, processes = [], []
    try:
        for spec in specs:
            mine, theirs = context.Pipe()
            process = context.Process(
                target=_work, args=(spec, theirs), name=f"caplab-worker-{spec.part.index}"
            )
            process.start()
            theirs.close()
            channels.append(mine)
            processes.append(process)
        deadline = time.monotonic() + READY_TIMEOUT
        earliest = [
            float(_receive(channel, process, i, deadline)[1])  # type: ignore[arg-type]
            for i, (channel, process) in enumerate(zip(channels, processes, strict=True))
        ]
        start = max(earliest)
        console.print(
            f"{len(specs)} workers ready; the plan starts in {max(0.0, start - time.time()):.2f} s"
            f" and runs {specs[0].config.duration:g} s"
        )
        for channel in channels:
            channel.send(start)
        shards = [
            str(_receive(channel, process, i, None)[1])
            for i, (channel, process) in enumerate(zip(channels, processes, strict=True))
        ]
        for process in processes:
            process.join()
        return shards
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)
