"""``caplab chaos``: a fault-injecting TCP proxy that makes CAP visible on one machine.

The emulators are single-node, so the lab puts named *links* in front of them: typically a
``leader`` link (the path of writes and strong reads) and a ``replica`` link (stale reads).
Run one ledger instance through each link, send strong reads and transfers to the first and
stale reads to the second (``caplab load --replica-url``), then partition the leader link:
strong reads and transfers fail after their deadline — never answer wrong (CP) — while stale
and cached reads keep answering with measured staleness (AP). It models how Spanner serves
stale reads from any replica while strong reads need the leader; the data is still one
emulator, so the replica never actually diverges.

Hand-written because it is the lesson and user-space is the only option here (the kernel has
no netem; Toxiproxy is not packaged). Faults per link:

- **partition**: bytes stop flowing both ways (held, as TCP would hold them while it
  retransmits); new connections are accepted but go nowhere. Healing lets held traffic through.
- **delay**: each chunk waits this long before it is forwarded (each direction).

Control API (JSON over HTTP): ``GET /links``; ``POST /links/{name}/partition``;
``POST /links/{name}/heal``; ``POST /links/{name}/delay?ms=50``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from caplab.core.errors import CaplabError

CHUNK = 65536


@dataclass
class Link:
    name: str
    listen_port: int
    target_host: str
    target_port: int
    delay: float = 0.0
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0

    def __post_init__(self) -> None:
        self.flowing.set()

    @property
    def partitioned(self) -> bool:
        return not self.flowing.is_set()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": f"127.0.0.1:{self.listen_port}",
            "target": f"{self.target_host}:{self.target_port}",
            "partitioned": self.partitioned,
            "delay_ms": round(self.delay * 1000, 3),
            "connections": self.connections,
        }

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                await self.flowing.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                await self.flowing.wait()
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_writer.close()
            return
        self.connections += 1
        try:
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer),
            )
        finally:
            self.connections -= 1


def parse_link(name: str, text: str) -> Link:
    """``LISTEN_PORT:TARGET_HOST:TARGET_PORT`` → a link."""
    try:
        listen, host, port = text.split(":")
        return Link(name, int(listen), host, int(port))
    except ValueError as error:
        raise CaplabError(
            f"--{name}: write LISTEN_PORT:TARGET_HOST:TARGET_PORT, not {text!r}"
        ) from error


def control_app(links: dict[str, Link]) -> Starlette:
    def link_of(request: Request) -> Link:
        name = request.path_params["name"]
        if name not in links:
            raise KeyError(name)
        return links[name]

    async def list_links(request: Request) -> JSONResponse:
        return JSONResponse([link.describe() for link in links.values()])

    async def act(request: Request) -> JSONResponse:
        try:
            link = link_of(request)
        except KeyError:
            return JSONResponse(
                {"type": "about:blank", "title": "no such link", "status": 404,
                 "detail": f"links: {', '.join(links)}"},
                status_code=404, media_type="application/problem+json",
            )  # fmt: skip
        action = request.path_params["action"]
        if action == "partition":
            link.flowing.clear()
        elif action == "heal":
            link.flowing.set()
        elif action == "delay":
            try:
                link.delay = max(0.0, float(request.query_params.get("ms", "0")) / 1000)
            except ValueError:
                return JSONResponse(
                    {"type": "about:blank", "title": "invalid ms", "status": 422,
                     "detail": "ms must be a number of milliseconds", "field": "query.ms"},
                    status_code=422, media_type="application/problem+json",
                )  # fmt: skip
        else:
            return JSONResponse({"title": "unknown action", "status": 404}, status_code=404)
        return JSONResponse(link.describe())

    return Starlette(
        routes=[
            Route("/links", list_links),
            Route("/links/{name}/{action}", act, methods=["POST"]),
        ]
    )


async def serve(links: list[Link], control_port: int, ready: asyncio.Event | None = None) -> None:
    """Run every link and the control API until cancelled."""
    servers = [
        await asyncio.start_server(link.handle, "127.0.0.1", link.listen_port) for link in links
    ]
    config = uvicorn.Config(
        control_app({link.name: link for link in links}),
        host="127.0.0.1",
        port=control_port,
        log_level="warning",
    )
    control = uvicorn.Server(config)
    if ready is not None:
        ready.set()
    try:
        await control.serve()
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "chaos",
        help="fault-injecting TCP proxy (leader and replica links)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--leader", required=True, metavar="PORT:HOST:PORT")
    parser.add_argument("--replica", metavar="PORT:HOST:PORT")
    parser.add_argument("--control-port", type=int, required=True, help="control API port")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    links = [parse_link("leader", args.leader)]
    if args.replica:
        links.append(parse_link("replica", args.replica))
    for link in links:
        print(f"{link.name}: 127.0.0.1:{link.listen_port} → {link.target_host}:{link.target_port}")
    print(f"control: http://127.0.0.1:{args.control_port}/links")
    asyncio.run(serve(links, args.control_port))
    return 0
