"""The emulator's HTTP side: the OpenID discovery document and the JWKS that verify the OIDC
tokens it puts on HTTP tasks, plus a health endpoint. A small Starlette app under uvicorn."""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from emulators.cloudtasks.tokens import DISCOVERY_PATH, JWKS_PATH, TokenSigner


def oidc_app(signer: TokenSigner) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(signer.discovery())

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(signer.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route(DISCOVERY_PATH, discovery),
            Route(JWKS_PATH, jwks),
            Route("/healthz", health),
        ]
    )


class OidcHttpServer:
    """Serves :func:`oidc_app` on an already bound socket (so port 0 works and the issuer URL
    is known before the first token is signed)."""

    def __init__(self, signer: TokenSigner, host: str, port: int) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        config = uvicorn.Config(oidc_app(signer), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serve in the background; return once uvicorn accepts connections."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it failed
                raise RuntimeError("the OIDC HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()
