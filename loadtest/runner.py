"""The open-loop runner: operations start at their intended times whatever the responses do.

Hand-written because it is the lesson (coordinated omission): a closed-loop tool waits for a
response before sending the next request, so when the server stalls it simply stops sending
and the stall vanishes from its numbers. Here the schedule is fixed in advance
(:mod:`loadtest.plan`); a dispatcher sleeps until each intended start and launches the
operation without waiting for earlier ones. Latency is measured from the *intended* start (as
wrk2 and YCSB's ``measurement.interval=intended`` do), so time spent waiting for a free
connection counts. An operation that starts more than ``late_threshold`` after its intended
time is a *late start* (the generator, or its connection pool, could not keep up); beyond
``max_in_flight`` operations an arrival is dropped and counted (k6's ``dropped_iterations``)
instead of silently delaying the schedule. Operations intended during the warm-up run but are
marked and left out of the statistics (the checkers still see them).

One generator may run only its :class:`~loadtest.plan.Part` of the plan (``caplab load
--workers``, Cloud Run Job shards). Every part creates the run's accounts (creation is
idempotent; the record says whether this call created the account), then waits for its
*gate* to name the wall-clock instant the plan starts, so parts started apart still share one
schedule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from caplab.core.durations import parse_duration
from caplab.core.errors import CaplabError
from loadtest.auth import IdTokenAuth
from loadtest.client import LabClient
from loadtest.clock import HOST, Clock, measure
from loadtest.config import LoadConfig
from loadtest.plan import Part, Planned, account_ids, part_of, schedule
from loadtest.pool import open_session
from loadtest.records import ERROR, OK, REJECTED, UNKNOWN, Record

SETUP_CONCURRENCY = 8
START_LEAD = 0.05
"""Seconds between building the schedule and its first intended start."""

Gate = Callable[[float], Awaitable[float]]
"""Given the earliest wall-clock instant (epoch seconds) this generator could start its plan,
the instant it starts it (a coordinator answers the same instant to every worker)."""


@dataclass(frozen=True)
class Endpoints:
    ledger_url: str
    activity_url: str | None = None
    auth: IdTokenAuth | None = None
    replica_url: str | None = None  # stale and cached reads go here when set (caplab chaos)


@dataclass
class RunResult:
    config: LoadConfig
    run_id: str
    accounts: list[str]
    endpoints: Endpoints
    records: list[Record] = field(default_factory=list)
    setup: list[Record] = field(default_factory=list)
    started_wall: float = 0.0
    dropped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    part: Part = field(default_factory=Part)
    wall_offset: float = 0.0
    """Add to a record's ``intended``/``invoked``/``returned`` for epoch seconds (0 when the
    times already are epoch seconds on the reference clock, as in a merged run)."""
    clock: Clock = HOST
    cpu_seconds: float = 0.0
    """CPU this process spent driving the schedule (its own cost per operation)."""

    @property
    def measured_seconds(self) -> float:
        return self.config.duration - self.config.warmup


class _Live:
    """Counters the progress line shows."""

    def __init__(self) -> None:
        self.sent = self.done = self.errors = self.late = self.in_flight = 0


async def _setup_accounts(
    client: LabClient, config: LoadConfig, accounts: list[str]
) -> list[Record]:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def create(seq: int, account: str) -> Record:
        async with gate:
            record = Record(seq=seq, kind="create", account=account, intended=time.monotonic())
            return await client.create_account(record, config.initial_balance)

    records = await asyncio.gather(*(create(-1 - i, a) for i, a in enumerate(accounts)))
    failed = [r for r in records if r.outcome != OK]
    if failed:
        raise CaplabError(
            f"could not create the run's accounts at {client.ledger_url} "
            f"({len(failed)} of {len(records)} failed; first: {failed[0].error}). "
            "Is the ledger running there?"
        )
    return list(records)


async def _execute(
    client: LabClient, planned: Planned, record: Record, accounts: list[str]
) -> Record:
    if planned.kind == "transfer":
        return await client.transfer(record)
    if planned.kind == "snapshot":
        return await client.snapshot(record, accounts)
    if planned.kind == "activity":
        return await client.activity(record)
    return await client.read(record)


def _mix_for(config: LoadConfig, endpoints: Endpoints, notes: list[str]) -> LoadConfig:
    if endpoints.activity_url or config.mix.get("activity", 0) <= 0:
        return config
    notes.append("no activity URL given: activity reads and t-visibility skipped")
    mix = {k: w for k, w in config.mix.items() if k != "activity"}
    return dataclasses.replace(config, mix=mix)


async def run_load(
    config: LoadConfig,
    endpoints: Endpoints,
    console: Console | None = None,
    run_id: str | None = None,
    *,
    part: Part | None = None,
    gate: Gate | None = None,
    clock: str = "host",
) -> RunResult:
    """Create the run's accounts, estimate this generator's clock (``clock``: a source of
    :func:`loadtest.clock.measure`), drive ``part`` of the schedule (all of it by default)
    from the instant ``gate`` names (as soon as possible by default), and return every
    record."""
    console = console or Console()
    notes: list[str] = []
    config = _mix_for(config, endpoints, notes)
    run_id = run_id or f"lab-{uuid.uuid4().hex[:8]}"
    accounts = account_ids(run_id, config.accounts)
    part = part or Part()
    result = RunResult(config, run_id, accounts, endpoints, notes=notes, part=part)
    async with open_session(config.connections, config.timeout) as session:
        client = LabClient(
            session,
            endpoints.ledger_url,
            endpoints.activity_url,
            config.staleness,
            config.activity_limit,
            replica_url=endpoints.replica_url,
            auth=endpoints.auth,
        )
        result.setup = await _setup_accounts(client, config, accounts)
        result.clock = await measure(clock, client, accounts[0])
        earliest = time.time() + START_LEAD
        if config.mix.get("exact", 0) > 0 or config.mix.get("bounded", 0) > 0:
            # A stale read looks `staleness` into the past: before that the accounts did not
            # exist yet and every such read would be a 404.
            earliest += parse_duration(config.staleness).total_seconds()
        plan = part_of(schedule(config, accounts), part)
        result.started_wall = await gate(earliest) if gate is not None else earliest
        loop = asyncio.get_running_loop()
        result.wall_offset = time.time() - loop.time()
        start = result.started_wall - result.wall_offset
        cpu = time.process_time()
        result.records = await _drive(client, config, plan, accounts, start, result, console)
        result.cpu_seconds = time.process_time() - cpu
        await _resolve(client, result)
    return result


RESOLVE_ATTEMPTS = 5


async def _resolve(client: LabClient, result: RunResult) -> None:
    """Replay each unknown transfer with its Idempotency-Key until its outcome is known
    (a few attempts, backing off); those still unknown stay pending for the checkers."""
    unknown = [r for r in result.records if r.outcome == UNKNOWN and r.idempotency_key]
    for attempt in range(RESOLVE_ATTEMPTS):
        unknown = [r for r in unknown if not await client.resolve(r)]
        if not unknown:
            break
        await asyncio.sleep(0.2 * 2**attempt)
    resolved = sum(1 for r in result.records if r.resolved)
    if resolved or unknown:
        result.notes.append(
            f"{resolved} transfers of unknown outcome resolved by replaying their "
            f"Idempotency-Key after the run; {len(unknown)} still unknown"
        )


async def _drive(
    client: LabClient,
    config: LoadConfig,
    plan: list[tuple[int, Planned]],
    accounts: list[str],
    start: float,
    result: RunResult,
    console: Console,
) -> list[Record]:
    """Run ``plan`` (sequence number, operation) from ``start`` on the loop's clock."""
    loop = asyncio.get_running_loop()
    connections = asyncio.Semaphore(config.connections)
    live = _Live()
    records: list[Record] = []
    tasks: set[asyncio.Task[Record]] = set()
    warmup_end = start + config.warmup

    async def operate(planned: Planned, record: Record) -> Record:
        try:
            async with connections:
                await _execute(client, planned, record, accounts)
        finally:
            live.in_flight -= 1
        live.done += 1
        live.errors += record.outcome not in (OK, REJECTED)
        live.late += record.lag > config.late_threshold
        return record

    progress = Progress(
        TextColumn("[bold]load[/]"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    )
    with progress:
        bar = progress.add_task("", total=config.duration)

        async def refresh() -> None:
            while True:
                progress.update(
                    bar,
                    completed=min(config.duration, max(0.0, loop.time() - start)),
                    description=(
                        f"sent {live.sent}  done {live.done}  in flight {live.in_flight}  "
                        f"errors {live.errors}  late {live.late}  dropped "
                        f"{sum(result.dropped.values())}"
                    ),
                )
                await asyncio.sleep(0.25)

        refresher = asyncio.create_task(refresh())
        try:
            for seq, planned in plan:
                due = start + planned.at
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if live.in_flight >= config.max_in_flight:
                    result.dropped[planned.kind] += 1
                    continue
                record = Record(
                    seq=seq,
                    kind=planned.kind,
                    account=planned.account,
                    other=planned.other,
                    amount=planned.amount,
                    intended=due,
                    warmup=due < warmup_end,
                )
                records.append(record)
                live.sent += 1
                live.in_flight += 1
                task = asyncio.create_task(operate(planned, record))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            refresher.cancel()
            for task in tasks:
                task.cancel()
        progress.update(bar, completed=config.duration)
    for record in records:
        if not record.invoked:  # cancelled before it could start
            record.outcome, record.error = ERROR, "not started"
    return records
