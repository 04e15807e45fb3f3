"""Fixtures for the relay's end-to-end tests: relay processes on the session's stack, a pull
subscription tapping ``transfer-events``, transfers through the session's ledger, and a
cuttable TCP link to Spanner (:class:`loadtest.chaos.Link`) for one relay only."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from caplab.core.topology import LOCAL_PROJECT, TOPOLOGY
from caplab.local import launcher
from caplab.local.launcher import RunningService
from emulators.manager import free_port
from loadtest.chaos import Link
from tests.fixtures.services import ServiceRunner

Transfer = Callable[[int], str]


def launch_relays(
    services: ServiceRunner, count: int, extra_env: dict[str, str]
) -> list[RunningService]:
    """``count`` relay processes started side by side (their start-ups overlap), each ready;
    the caller stops them."""
    relays = []
    try:
        for _ in range(count):
            port = free_port()
            relays.append(
                launcher.start(
                    "relay",
                    port,
                    dict(services.environ, **extra_env),
                    log_path=services.log_dir / f"relay-{port}.log",
                )
            )
        for relay in relays:
            launcher.wait_ready(relay, timeout=60)
    except BaseException:
        for relay in relays:
            launcher.stop(relay)
        raise
    return relays


def relay_stats(relay: RunningService) -> dict[str, Any]:
    response = httpx.get(relay.url + "/stats", timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def event_tap(emulator_env: dict[str, str]) -> Iterator[str]:
    """A pull subscription on transfer-events, made for this test and deleted after it."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    name = subscriber.subscription_path(LOCAL_PROJECT, f"tap-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(
        name=name, topic=f"projects/{LOCAL_PROJECT}/topics/{TOPOLOGY.topics[0]}"
    )
    try:
        yield name
    finally:
        subscriber.delete_subscription(subscription=name)
        subscriber.close()


@pytest.fixture
def transfer(ledger: RunningService) -> Iterator[Transfer]:
    """``transfer(amount)``: one transfer between two fresh accounts of this test, through the
    ledger; its transfer id."""
    with httpx.Client(base_url=ledger.url, timeout=30) as http:
        accounts = []
        for _ in range(2):
            account = f"acct-{uuid.uuid4().hex[:12]}"
            response = http.post(
                "/v1/accounts", json={"id": account, "owner": "relay", "balance_cents": 10**9}
            )
            assert response.status_code == 201, response.text
            accounts.append(account)

        def send(amount: int) -> str:
            response = http.post(
                "/v1/transfers",
                json={
                    "from": accounts[amount % 2],
                    "to": accounts[1 - amount % 2],
                    "amount_cents": amount,
                },
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code == 201, response.text
            return response.json()["transfer_id"]

        yield send


class SpannerLink:
    """A :class:`loadtest.chaos.Link` to the session's Spanner emulator, served on its own
    event loop: ``cut()`` holds every byte both ways (a black-holed network), ``heal()`` lets
    them through again. Only processes pointed at ``address`` are affected."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self.link = Link("spanner", free_port(), host, int(port))
        self.address = f"127.0.0.1:{self.link.listen_port}"
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(),), daemon=True
        )
        self._thread.start()
        assert self._started.wait(10)

    async def _serve(self) -> None:
        self.link.flowing = asyncio.Event()  # bound to this loop
        self.link.flowing.set()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self.link.handle, "127.0.0.1", self.link.listen_port)
        self._started.set()
        async with server:
            await self._stop.wait()
        self.link.flowing.set()  # let held connections finish so their tasks can end
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _call(self, action: Callable[[], object]) -> None:
        done = threading.Event()

        def run() -> None:
            action()
            done.set()

        self._loop.call_soon_threadsafe(run)
        assert done.wait(5)

    def cut(self) -> None:
        self._call(self.link.flowing.clear)

    def heal(self) -> None:
        self._call(self.link.flowing.set)

    def close(self) -> None:
        stop = self._stop
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def spanner_link(emulator_env: dict[str, str]) -> Iterator[SpannerLink]:
    link = SpannerLink(emulator_env["SPANNER_EMULATOR_HOST"])
    try:
        yield link
    finally:
        link.close()


@pytest.fixture
def database(emulator_env: dict[str, str]) -> Any:
    """The session's ledger database, read directly."""
    from google.cloud import spanner

    client = spanner.Client(project=LOCAL_PROJECT)
    return client.instance(TOPOLOGY.spanner.instance).database(TOPOLOGY.spanner.database)
