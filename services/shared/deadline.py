"""Run blocking client calls off the event loop, with a deadline the caller can rely on.

The Google clients are synchronous and their own per-call timeouts do not cover everything a
handler does (a transaction's commit, session checkout, retries). :func:`run_with_deadline`
bounds the whole call: past the deadline the request fails with ``TimeoutError`` (which the app
factory answers as 503 + Retry-After) while the worker thread finishes or fails on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio

P = ParamSpec("P")
T = TypeVar("T")


async def run_with_deadline(
    deadline: float, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``function(*args, **kwargs)`` in a worker thread; ``TimeoutError`` after ``deadline`` s."""
    with anyio.fail_after(deadline):
        return await anyio.to_thread.run_sync(
            functools.partial(function, *args, **kwargs), abandon_on_cancel=True
        )
