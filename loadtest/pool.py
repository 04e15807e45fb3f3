"""The generator's keep-alive connections: one aiohttp session.

One :class:`aiohttp.TCPConnector` holds up to ``connections`` connections, kept alive between
requests; an idle connection is taken from a per-host queue in constant time, so (unlike
httpcore's pool, which examined every pooled connection on each request and had to be split
into shards of eight) one connector serves any pool size. The environment's proxy settings
are ignored (``trust_env=False``): every request goes straight to the URL it names.
``timeout`` bounds each request as a whole, waiting for a connection included.
"""

from __future__ import annotations

import aiohttp


def open_session(connections: int, timeout: float) -> aiohttp.ClientSession:
    """A session for one run (use it as ``async with``, inside the run's event loop)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(total=timeout),
        trust_env=False,
    )
