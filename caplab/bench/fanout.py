"""Commit-to-visible delay (t-visibility) of the activity read model, at a constant rate.

Starts its own stack (the emulators on free ports in a temporary ``CAPLAB_HOME``) and the
services as processes, points the push subscriptions at them, then runs an open loop: every
``1/rate`` s, from intended start times (a slow step does not slow the arrivals), one
transfer from a pool of 50 payers to one payee. Two observers poll the payee's feed at fixed
rates, so measuring adds no load as lag grows: the newest 10 items every ``--poll-ms``, the
newest 100 every 250 ms (for transfers that fell behind the first page; those are measured
with that coarser resolution). Delay = the first poll showing the transfer − its commit
time; it is overestimated by up to one poll interval plus one read. A transfer neither page
ever showed counts as infinitely late, so the percentiles are upper bounds.

``--source ledger`` (default): ``POST /v1/transfers`` on the ledger; the commit time is the
Spanner commit timestamp it answers, and the delay covers the outbox relay (its poll
interval), Pub/Sub push, the projection into Bigtable and the read.
``--source publish``: the bench publishes the ``transfer.committed`` events itself as the relay
would, the commit time being the moment before publishing: the fan-out alone.

    python -m caplab.bench.fanout --rate 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path

import httpx
from hdrh.histogram import HdrHistogram

from caplab.core.catalogue import local_service_urls
from caplab.core.timestamps import parse_rfc3339
from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from caplab.local import launcher
from emulators import bootstrap, manager
from services.shared.events import TransferCommitted

PAYERS = 50
NEAR_LIMIT = 10
"""The fast observer reads this many newest items: a 1-row read costs ~1.7 ms of the
service's CPU but a 100-row one ~16 ms, which at 100 polls/s would itself delay the
projection."""
FAR_LIMIT = 100
FAR_EVERY = 0.25
GIVE_UP_SECONDS = 30.0
UNSEEN_MICROS = 120_000_000
"""Recorded for a transfer no poll saw (too late for both pages, or never projected), so
percentiles stay upper bounds instead of silently dropping the slowest."""

Commit = Callable[[int], Coroutine[None, None, tuple[str, float] | None]]
"""Makes transfer number i; its transfer id and commit time (epoch s), None if refused."""


async def _observe(
    http: httpx.AsyncClient,
    url: str,
    limit: int,
    every: float,
    first_seen: dict[str, float],
    finished: asyncio.Event,
) -> None:
    """Record when each transfer id first shows in the payee's newest ``limit`` items."""
    while not finished.is_set():
        response = await http.get(url, params={"limit": limit})
        now = time.time()
        if response.status_code == 200:
            for item in response.json()["items"]:
                first_seen.setdefault(item["transfer_id"], now)
        await asyncio.sleep(every)


def _ledger_commit(
    http: httpx.AsyncClient, ledger: str, payers: list[str], payee: str, refused: dict[str, int]
) -> Commit:
    async def commit(index: int) -> tuple[str, float] | None:
        try:
            response = await http.post(
                f"{ledger}/v1/transfers",
                json={"from": payers[index % len(payers)], "to": payee, "amount_cents": 1},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
        except httpx.HTTPError as error:
            refused[type(error).__name__] = refused.get(type(error).__name__, 0) + 1
            return None
        if response.status_code != 201:
            refused[str(response.status_code)] = refused.get(str(response.status_code), 0) + 1
            return None
        body = response.json()
        return body["transfer_id"], parse_rfc3339(body["commit_timestamp"]).timestamp()

    return commit


def _publish_commit(environ: dict[str, str], payers: list[str], payee: str) -> Commit:
    from google.cloud import pubsub_v1

    with manager.exported(environ):
        publisher = pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
            batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.001),
        )
    topic = publisher.topic_path(LOCAL_PROJECT, TOPOLOGY.topics[0])

    async def commit(index: int) -> tuple[str, float] | None:
        committed = time.time()
        event = TransferCommitted(
            event_id=uuid.uuid4().hex,
            transfer_id=uuid.uuid4().hex,
            from_account=payers[index % len(payers)],
            to_account=payee,
            amount_cents=1,
            committed_at=datetime.fromtimestamp(committed, UTC),
            from_version=index,
            to_version=index,
        )
        publisher.publish(
            topic, event.to_json(), ordering_key=event.from_account, **event.attributes()
        )
        return event.transfer_id, committed

    return commit


async def _load(
    commit: Commit, feed_url: str, rate: float, seconds: float, poll: float
) -> tuple[HdrHistogram, int, int, int]:
    """Run the open loop; (histogram of delays in µs, attempted, committed, never seen)."""
    first_seen: dict[str, float] = {}
    finished = asyncio.Event()
    total = int(rate * seconds)
    async with httpx.AsyncClient(timeout=10) as http:
        observers = [
            asyncio.create_task(_observe(http, feed_url, limit, every, first_seen, finished))
            for limit, every in ((NEAR_LIMIT, poll), (FAR_LIMIT, FAR_EVERY))
        ]
        start = time.monotonic()
        commits: list[asyncio.Task[tuple[str, float] | None]] = []
        for index in range(total):
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
            commits.append(asyncio.create_task(commit(index)))
        committed = dict(c for c in await asyncio.gather(*commits) if c is not None)
        for _ in range(int(GIVE_UP_SECONDS * 10)):  # until all seen, or give up
            if committed.keys() <= first_seen.keys():
                break
            await asyncio.sleep(0.1)
        finished.set()
        await asyncio.gather(*observers)
    histogram = HdrHistogram(1, UNSEEN_MICROS, 3)
    for transfer_id, at in committed.items():
        if transfer_id in first_seen:
            histogram.record_value(max(1, int((first_seen[transfer_id] - at) * 1_000_000)))
        else:  # censored: counted as later than anything measured
            histogram.record_value(UNSEEN_MICROS)
    never = len(committed.keys() - first_seen.keys())
    return histogram, total, len(committed), never


def _create_accounts(ledger: str, accounts: list[str]) -> None:
    with httpx.Client(timeout=10) as http:
        for account in accounts:
            http.post(
                f"{ledger}/v1/accounts",
                json={"id": account, "owner": "bench", "balance_cents": 10**9},
            ).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description="t-visibility of the activity read model")
    parser.add_argument("--rate", type=float, default=50.0, help="transfers per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the load")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="fast observer interval")
    parser.add_argument("--source", choices=("ledger", "publish"), default="ledger")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="caplab-bench-fanout-"))
    ports = {port.key: manager.free_port() for spec in manager.EMULATORS for port in spec.ports}
    config = manager.StackConfig.from_environ(
        dict(os.environ, CAPLAB_HOME=str(home)), port_overrides=ports
    )
    print(f"starting the emulators in {home} ...", flush=True)
    manager.up(config)
    run = uuid.uuid4().hex[:8]
    payers = [f"bench-{run}-payer-{i}" for i in range(PAYERS)]
    payee = f"bench-{run}-payee"
    names = ["activity"] + (["ledger", "relay"] if args.source == "ledger" else [])
    refused: dict[str, int] = {}  # failed commits by HTTP status or error type
    try:
        environ = dict(os.environ, **manager.client_environment(config))
        with contextlib.ExitStack() as stack:
            running = {
                name: stack.enter_context(
                    launcher.running(
                        name, manager.free_port(), environ, log_path=home / f"{name}.log"
                    )
                )
                for name in names
            }
            urls = dict(local_service_urls(), **{n: s.url for n, s in running.items()})
            with manager.exported(environ):
                bootstrap.ensure_pubsub(urls)
            if args.source == "ledger":
                _create_accounts(urls["ledger"], [*payers, payee])
            print(
                f"load: {args.rate:g} transfers/s for {args.seconds:g} s from {args.source}, "
                f"fast poll every {args.poll_ms:g} ms",
                flush=True,
            )

            async def load() -> tuple[HdrHistogram, int, int, int]:
                async with httpx.AsyncClient(timeout=10) as http:
                    commit = (
                        _ledger_commit(http, urls["ledger"], payers, payee, refused)
                        if args.source == "ledger"
                        else _publish_commit(environ, payers, payee)
                    )
                    feed = f"{urls['activity']}/v1/accounts/{payee}/activity"
                    return await _load(commit, feed, args.rate, args.seconds, args.poll_ms / 1000)

            histogram, total, committed, never = asyncio.run(load())
    finally:
        manager.down(config)
    ms = {p: histogram.get_value_at_percentile(p) / 1000 for p in (50, 90, 99, 99.9)}
    print()
    print(f"activity read model: commit-to-visible delay (t-visibility), source={args.source}")
    print(
        f"  transfers attempted {total}, committed {committed}, "
        f"never seen by the observers: {never} (counted as infinitely late)"
    )
    print(
        f"  p50 {ms[50]:.1f} ms   p90 {ms[90]:.1f} ms   p99 {ms[99]:.1f} ms   "
        f"p99.9 {ms[99.9]:.1f} ms"
    )
    if refused:
        print(f"  failed commits by cause: {refused}")
    print(f"  target p99 <= 300 ms: {'met' if ms[99] <= 300 else 'NOT met'}")
    print(f"  machine load average (1 min) at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
