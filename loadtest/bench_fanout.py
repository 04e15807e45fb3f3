"""Commit-to-visible delay (t-visibility) of the activity read model, at a constant rate.

Starts its own stack (the emulators on free ports in a temporary ``CAPLAB_HOME``) and the
activity service as a process, points the ``activity-projector`` push subscription at it, then
runs an open loop: every ``1/rate`` s (from intended start times, so a slow step does not
slow the arrivals) one ``transfer.committed`` event is published as the ledger's outbox relay
publishes it (ordering key = payer, payers drawn from a pool of 50, all paying one payee),
and two observers poll the payee's feed at fixed rates, so measuring does not add load as lag
grows: the newest 10 items every ``--poll-ms``, the newest 100 every 250 ms (for transfers
that fell behind the first page: their delay is measured with that coarser resolution).
The delay is first-seen time minus commit time (the moment before publishing): it covers
Pub/Sub push, the projection into Bigtable and the read, but not the relay's own lag behind
the Spanner commit. Delays are overestimated by up to one poll interval plus one read; a
transfer that falls behind both pages before a poll sees it is counted as never visible.

    python -m loadtest.bench_fanout --rate 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from hdrh.histogram import HdrHistogram

from caplab.topology import LOCAL_PROJECT, TOPOLOGY, local_service_urls
from emulators import bootstrap, manager
from services import launcher
from services.shared.events import TransferCommitted

PAYERS = 50
NEAR_LIMIT = 10
"""The fast observer reads this many newest items: a 1-row read costs ~1.7 ms but a 100-row
one ~16 ms of the service's CPU, which at 100 polls/s would itself delay the projection."""
FAR_LIMIT = 100
FAR_EVERY = 0.25
"""The slow observer catches transfers that fell behind the fast one's page."""


async def _observe(
    http: httpx.AsyncClient,
    url: str,
    limit: int,
    every: float,
    pending: dict[str, float],
    seen: dict[str, float],
    done: asyncio.Event,
) -> None:
    """Poll the payee's newest ``limit`` items every ``every`` s until ``done`` and nothing
    is pending (or 30 s more): the first poll that shows a transfer records its delay."""
    give_up: float | None = None
    while pending or not done.is_set():
        if done.is_set():
            give_up = give_up or time.monotonic() + 30
            if time.monotonic() > give_up:
                return
        response = await http.get(url, params={"limit": limit})
        now = time.time()
        if response.status_code == 200:
            for item in response.json()["items"]:
                committed = pending.pop(item["transfer_id"], None)
                if committed is not None:
                    seen[item["transfer_id"]] = now - committed
        await asyncio.sleep(every)


async def _run(
    activity_url: str, environ: dict[str, str], rate: float, seconds: float, poll: float
) -> tuple[HdrHistogram, int, int]:
    from google.cloud import pubsub_v1

    with manager.exported(environ):
        publisher = pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
            batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.001),
        )
    topic = publisher.topic_path(LOCAL_PROJECT, TOPOLOGY.topics[0])
    run = uuid.uuid4().hex[:8]
    payee = f"bench-{run}-payee"
    pending: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = asyncio.Event()
    total = int(rate * seconds)
    async with httpx.AsyncClient(timeout=10) as http:
        url = f"{activity_url}/v1/accounts/{payee}/activity"
        observers = [
            asyncio.create_task(_observe(http, url, limit, every, pending, seen, done))
            for limit, every in ((NEAR_LIMIT, poll), (FAR_LIMIT, FAR_EVERY))
        ]
        start = time.monotonic()
        for index in range(total):
            intended = start + index / rate
            await asyncio.sleep(max(0.0, intended - time.monotonic()))
            committed = time.time()
            event = TransferCommitted(
                event_id=uuid.uuid4().hex,
                transfer_id=uuid.uuid4().hex,
                from_account=f"bench-{run}-payer-{index % PAYERS}",
                to_account=payee,
                amount_cents=1,
                committed_at=datetime.fromtimestamp(committed, UTC),
                from_version=index,
                to_version=index,
            )
            pending[event.transfer_id] = committed
            publisher.publish(
                topic, event.to_json(), ordering_key=event.from_account, **event.attributes()
            )
        done.set()
        await asyncio.gather(*observers)
    histogram = HdrHistogram(1, 60_000_000, 3)  # microseconds
    for delay in seen.values():
        histogram.record_value(max(1, int(delay * 1_000_000)))
    return histogram, total, total - len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description="t-visibility of the activity read model")
    parser.add_argument("--rate", type=float, default=50.0, help="transfers per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the load")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="watcher poll interval")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="caplab-bench-fanout-"))
    ports = {port.key: manager.free_port() for spec in manager.EMULATORS for port in spec.ports}
    config = manager.StackConfig.from_environ(
        dict(os.environ, CAPLAB_HOME=str(home)), port_overrides=ports
    )
    print(f"starting the emulators in {home} ...", flush=True)
    manager.up(config)
    try:
        environ = dict(os.environ, **manager.client_environment(config))
        port = manager.free_port()
        with launcher.running("activity", port, environ, log_path=home / "activity.log") as svc:
            urls = dict(local_service_urls(), activity=svc.url)
            with manager.exported(environ):
                bootstrap.ensure_pubsub(urls)
            print(
                f"load: {args.rate:g} transfers/s for {args.seconds:g} s, "
                f"poll every {args.poll_ms:g} ms",
                flush=True,
            )
            histogram, total, missing = asyncio.run(
                _run(svc.url, environ, args.rate, args.seconds, args.poll_ms / 1000)
            )
    finally:
        manager.down(config)
    ms = {p: histogram.get_value_at_percentile(p) / 1000 for p in (50, 90, 99, 99.9)}
    print()
    print("activity read model: commit-to-visible delay (t-visibility)")
    print(f"  transfers: {total}  visible: {total - missing}  never visible (30 s): {missing}")
    print(
        f"  p50 {ms[50]:.1f} ms   p90 {ms[90]:.1f} ms   p99 {ms[99]:.1f} ms   "
        f"p99.9 {ms[99.9]:.1f} ms   max {histogram.get_max_value() / 1000:.1f} ms"
    )
    verdict = "met" if ms[99] <= 300 else "NOT met"
    print(f"  target p99 <= 300 ms: {verdict}")


if __name__ == "__main__":
    main()
