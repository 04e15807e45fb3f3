"""Run blocking client calls off the event loop, with a deadline the caller can rely on.

The Google clients are synchronous and their own per-call timeouts do not cover everything a
handler does (a transaction's commit, session checkout, retries). :func:`run_with_deadline`
bounds the whole call: past the deadline the request fails with ``TimeoutError`` (which the app
factory answers as 503 + Retry-After) while the worker thread finishes or fails on its own.

The calls run on one module-wide thread pool through ``loop.run_in_executor``: measured on the
ledger's strong read, this plain hand-off costs less per request than ``anyio.to_thread``
(capacity limiter and cancel scope per call), and the deadline is ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 40
"""Blocking calls in flight per process (the same bound as Starlette's default pool)."""

_pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="blocking")


async def run_with_deadline(
    deadline: float, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``function(*args, **kwargs)`` in a worker thread; ``TimeoutError`` after ``deadline`` s.

    The caller's context variables (the request's trace, for logs) travel with the call."""
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    async with asyncio.timeout(deadline):
        return await asyncio.get_running_loop().run_in_executor(_pool, call)
