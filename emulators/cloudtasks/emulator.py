"""The Cloud Tasks emulator as an object: gRPC server, OIDC endpoints and scheduler on one
event loop in a background thread, so synchronous code (the official client, pytest) drives
it from outside.

Test hooks: an injectable clock (:class:`~emulators.cloudtasks.clock.FakeClock` plus
:meth:`CloudTasksEmulator.advance`), the attempt log (:attr:`CloudTasksEmulator.attempts`),
:meth:`CloudTasksEmulator.run_until_idle` and :meth:`CloudTasksEmulator.reset`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import grpc

from caplab.core.topology import LOCAL_PROJECT
from emulators.cloudtasks.clock import Clock, FakeClock, SystemClock
from emulators.cloudtasks.oidc_http import OidcHttpServer
from emulators.cloudtasks.scheduler import AttemptRecord, Scheduler
from emulators.cloudtasks.server import add_handlers
from emulators.cloudtasks.service import CloudTasksService, ServiceConfig
from emulators.cloudtasks.store import Tombstones
from emulators.cloudtasks.tokens import DISCOVERY_PATH, JWKS_PATH, TokenSigner

_T = TypeVar("_T")


class CloudTasksEmulator:
    """``port``/``oidc_port`` 0 pick free ports (read :attr:`port`, :attr:`oidc_port` after
    :meth:`start`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        oidc_port: int = 0,
        config: ServiceConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.oidc_port = oidc_port
        self.config = config or ServiceConfig(project=LOCAL_PROJECT)
        self.clock: Clock = clock or SystemClock()
        self.signer = TokenSigner(issuer="")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._service: CloudTasksService | None = None

    # --- addresses -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC server: the value of ``CLOUD_TASKS_EMULATOR_HOST``."""
        return f"{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        """Issuer of the OIDC tokens; discovery is at ``issuer + /.well-known/...``."""
        return self.signer.issuer

    @property
    def jwks_url(self) -> str:
        return self.issuer + JWKS_PATH

    @property
    def discovery_url(self) -> str:
        return self.issuer + DISCOVERY_PATH

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> CloudTasksEmulator:
        self._thread = threading.Thread(target=self._thread_main, name="cloudtasks", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join()
        self._loop = None

    def __enter__(self) -> CloudTasksEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # reported to start(), which re-raises it
            if not self._ready.is_set():
                self._startup_error = error
                self._ready.set()
            else:
                raise

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        scheduler = Scheduler(
            queues={},
            task_tombstones=Tombstones(self.config.task_tombstone_seconds),
            clock=self.clock,
            signer=self.signer,
            attempt_log_size=self.config.attempt_log_size,
        )
        self._service = CloudTasksService(self.config, scheduler)
        server = grpc.aio.server()
        add_handlers(server, self._service)
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        oidc = OidcHttpServer(self.signer, self.host, self.oidc_port)
        self.oidc_port = oidc.port
        self.signer.issuer = oidc.base_url
        await server.start()
        scheduler_task = asyncio.create_task(scheduler.run())
        try:
            await oidc.start()
            self._ready.set()
            await self._stopping.wait()
        finally:
            scheduler_task.cancel()
            await server.stop(grace=0.2)
            await oidc.stop()
            await scheduler.close()

    # --- calls into the loop ---------------------------------------------------------------

    def _call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the emulator's loop (where all state lives) and return its
        result."""
        if self._loop is None:
            raise RuntimeError("the emulator is not running")

        async def call() -> _T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    @property
    def service(self) -> CloudTasksService:
        if self._service is None:
            raise RuntimeError("the emulator is not running")
        return self._service

    @property
    def attempts(self) -> list[AttemptRecord]:
        """The attempts so far (the last ``ServiceConfig.attempt_log_size``), in completion
        order."""
        return self._call(lambda: list(self.service.scheduler.attempts))

    def attempts_for(self, task_name: str) -> list[AttemptRecord]:
        return [a for a in self.attempts if a.task == task_name]

    def reset(self) -> None:
        """Forget every queue, task, tombstone and attempt (the clock is left as it is)."""
        self._call(self.service.reset)

    def advance(self, seconds: float) -> None:
        """Move a :class:`FakeClock` forward and let the scheduler act on the new time."""
        if not isinstance(self.clock, FakeClock):
            raise TypeError("advance() needs the emulator to run on a FakeClock")
        clock = self.clock
        self._call(lambda: (clock.advance(seconds), self.service.scheduler.wake()))

    def run_until_idle(self, timeout: float = 30.0, horizon: float | None = None) -> None:
        """Dispatch until nothing is in flight and no task can become due by itself: only
        paused queues' tasks (or none) remain. With a :class:`FakeClock` the clock jumps to
        each next due time instead of waiting (but not beyond ``horizon``, an absolute clock
        time); with the system clock this waits in real time. Raises TimeoutError after
        ``timeout`` real seconds."""
        if self._loop is None:
            raise RuntimeError("the emulator is not running")
        future = asyncio.run_coroutine_threadsafe(self._until_idle(horizon), self._loop)
        try:
            future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    async def _until_idle(self, horizon: float | None) -> None:
        scheduler = self.service.scheduler
        while True:
            await asyncio.sleep(0)  # let RPCs and cancellation in between steps
            next_at = scheduler.dispatch_due()
            if scheduler.in_flight:
                await asyncio.wait(set(scheduler.in_flight), return_when=asyncio.FIRST_COMPLETED)
                continue
            if next_at is None or (horizon is not None and next_at > horizon):
                return
            if isinstance(self.clock, FakeClock):
                self.clock.set(next_at)
            else:
                await asyncio.sleep(max(0.0, next_at - self.clock.now()))
