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
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

# Method modules register themselves on import.
from openledger_node.rpc import eth_chain, eth_send, eth_state, web3_net  # noqa: F401
from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import Dispatcher

log = logging.getLogger(__name__)

# A 5 MB contribution upload arrives hex-encoded in JSON (10 MB), plus the envelope.
MAX_BODY = 11 * 1024 * 1024
MAX_WS_MESSAGE = MAX_BODY


async def _too_large(send: Send) -> None:
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "request too large"}}
    ).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class JsonRpcHttpApp:
    """The HTTP side of JSON-RPC as a bare ASGI app; anything else goes to `fallback`.

    POST (and GET for a health answer) on `paths` are served here with CORS headers and the
    body limit, without a framework in between: every microsecond per request is throughput
    for clients that send one transaction per request. WebSocket upgrades fall through to
    the Starlette app, which handles subscriptions.
    """

    def __init__(self, dispatcher: Dispatcher, context: RpcContext, fallback: ASGIApp,
                 cors_origins: Sequence[str], limiter: trio.CapacityLimiter,
                 max_body: int = MAX_BODY, paths: tuple[str, ...] = ("/", "/rpc")) -> None:
        self.dispatcher = dispatcher
        self.context = context
        self.fallback = fallback
        self.any_origin = "*" in cors_origins
        self.origins = {o.encode() for o in cors_origins}
        self.limiter = limiter
        self.max_body = max_body
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.fallback(scope, receive, send)
            return
        headers = dict(scope["headers"])
        cors = self._cors_headers(headers.get(b"origin"))
        method = scope["method"]
        if method == "OPTIONS":
            requested = headers.get(b"access-control-request-headers", b"content-type")
            await _respond(send, 200, b"", [*cors, (b"access-control-allow-methods", b"POST, GET, OPTIONS"), (b"access-control-allow-headers", requested), (b"access-control-max-age", b"600")])
            return
        if method == "GET":
            head = self.context.ledger.head
            body = json.dumps({"status": "ok", "chainId": self.context.ledger.chain_id,
                               "block": head.block_number}).encode()
            await _respond(send, 200, body, cors + _JSON)
            return
        if method != "POST":
            await _respond(send, 405, b"", [*cors, (b"allow", b"POST, GET, OPTIONS")])
            return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await _too_large(send)
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        async with self.limiter:
            response = await self.dispatcher.handle_bytes(b"".join(chunks))
        if response is None:
            await _respond(send, 204, b"", cors)
            return
        await _respond(send, 200, json.dumps(response, separators=(",", ":")).encode(),
                       cors + _JSON)

    def _cors_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        if origin is None:
            return []
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        if origin in self.origins:
            return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        return []


_JSON = [(b"content-type", b"application/json")]


async def _respond(send: Send, status: int, body: bytes,
                   headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def build_app(context: RpcContext, cors_origins: Sequence[str] = ("*",),
              max_concurrency: int = 64) -> ASGIApp:
    dispatcher = Dispatcher(context)
    limiter = trio.CapacityLimiter(max_concurrency)

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

    websockets = Starlette(routes=[WebSocketRoute("/", ws_endpoint),
                                   WebSocketRoute("/ws", ws_endpoint)])
    return JsonRpcHttpApp(dispatcher, context, websockets, cors_origins, limiter)


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
