"""The JSON-RPC server: HTTP POST and WebSocket on the same paths, over Hypercorn on trio.

CORS is open to any origin by default (browser wallets such as MetaMask call from extension
origins); the server binds 127.0.0.1 unless configured otherwise. Bodies above `max_body`
are refused before they are read. Concurrency is capped so RPC load cannot starve block
production or consensus timers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

# Method modules register themselves on import.
from openledger_node.rpc import eth_chain, eth_send, eth_state, web3_net  # noqa: F401
from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import Dispatcher

log = logging.getLogger(__name__)

# A 5 MB contribution upload arrives hex-encoded in JSON (10 MB), plus the envelope.
MAX_BODY = 11 * 1024 * 1024
MAX_WS_MESSAGE = MAX_BODY


class BodyLimitMiddleware:
    """Refuse request bodies over `limit` bytes: by Content-Length, or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _too_large(send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "request too large"}}
    ).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def build_app(context: RpcContext, cors_origins: Sequence[str] = ("*",),
              max_concurrency: int = 64) -> Starlette:
    dispatcher = Dispatcher(context)
    limiter = trio.CapacityLimiter(max_concurrency)

    async def http_endpoint(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"status": "ok", "chainId": context.ledger.chain_id,
                                 "block": context.ledger.head.block_number})
        body = await request.body()
        async with limiter:
            response = await dispatcher.handle_bytes(body)
        if response is None:
            return Response(status_code=204)
        return JSONResponse(response)

    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        connection, outbound = context.subscriptions.open()
        ws_dispatcher = Dispatcher(dataclasses.replace(context, connection=connection))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_ws_writer, websocket, outbound, nursery.cancel_scope)
                while True:
                    try:
                        text = await websocket.receive_text()
                    except (WebSocketDisconnect, KeyError, RuntimeError):
                        break
                    if len(text) > MAX_WS_MESSAGE:
                        await connection.send_channel.send(
                            {"jsonrpc": "2.0", "id": None,
                             "error": {"code": -32600, "message": "request too large"}})
                        continue
                    async with limiter:
                        response = await ws_dispatcher.handle_bytes(text.encode())
                    if response is not None:
                        await connection.send_channel.send(response)
                nursery.cancel_scope.cancel()
        finally:
            context.subscriptions.close(connection)

    routes = [
        Route("/", http_endpoint, methods=["POST", "GET"]),
        WebSocketRoute("/", ws_endpoint),
        Route("/rpc", http_endpoint, methods=["POST", "GET"]),
        WebSocketRoute("/ws", ws_endpoint),
    ]
    middleware = [
        Middleware(BodyLimitMiddleware, limit=MAX_BODY),
        Middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["POST", "GET"],
                   allow_headers=["*"], max_age=600),
    ]
    return Starlette(routes=routes, middleware=middleware)


async def _ws_writer(websocket: WebSocket, outbound: trio.MemoryReceiveChannel[dict[str, Any]],
                     cancel_scope: trio.CancelScope) -> None:
    try:
        async for message in outbound:
            await websocket.send_text(json.dumps(message))
    except Exception:  # the client went away; the reader notices too
        pass
    finally:
        cancel_scope.cancel()
        await _close_quietly(websocket)


async def _close_quietly(websocket: WebSocket) -> None:
    try:
        await websocket.close(code=1013)
    except Exception:
        pass


async def serve_rpc(
    app: ASGIApp,
    binds: Sequence[str],
    shutdown: trio.Event,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `binds` ("host:port") until `shutdown` is set."""
    config = HypercornConfig()
    config.bind = list(binds)
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_max_requests = 10**9  # hypercorn's 1,000 default would break benchmarks
    config.graceful_timeout = 1.0
    config.websocket_max_message_size = MAX_WS_MESSAGE
    config.h11_max_incomplete_size = 64 * 1024
    await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)  # type: ignore[arg-type]
