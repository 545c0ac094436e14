"""JSON-RPC 2.0 dispatch: parse, validate, route to registered methods, shape responses.

Methods register with `@rpc_method("eth_chainId")` on an `async def handler(ctx, *params)`;
the dispatcher checks the parameter count against the handler's signature (missing required
arguments and surplus ones are -32602, as geth does) and turns any `RpcError` into an error
object. Unexpected exceptions are logged and become -32603 without details leaking.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from openledger_node.rpc.errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
)

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Any]]
MAX_BATCH = 1000
BATCH_CHECKPOINT = 10


@dataclass(frozen=True)
class MethodSpec:
    name: str
    handler: Handler
    required: int  # positional parameters that must be present
    maximum: int | None  # None: any number (*args)


METHODS: dict[str, MethodSpec] = {}


def rpc_method(name: str) -> Callable[[Handler], Handler]:
    """Register `handler(ctx, *params)` as the JSON-RPC method `name`."""

    def register(handler: Handler) -> Handler:
        params = list(inspect.signature(handler).parameters.values())[1:]  # skip ctx
        required = sum(
            1 for p in params if p.default is inspect.Parameter.empty
            and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        if name in METHODS:
            raise ValueError(f"JSON-RPC method {name} registered twice")
        METHODS[name] = MethodSpec(name, handler, required, None if variadic else len(params))
        return handler

    return register


def _error(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


class Dispatcher:
    """Answers JSON-RPC payloads (bytes or parsed) against `METHODS` with a context."""

    def __init__(self, context: Any, methods: dict[str, MethodSpec] | None = None) -> None:
        self.context = context
        self.methods = METHODS if methods is None else methods

    async def handle_bytes(self, body: bytes) -> Any:
        """The response object (dict, list, or None for notifications only)."""
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(None, RpcError(PARSE_ERROR, "parse error"))
        return await self.handle(payload)

    async def handle(self, payload: Any) -> Any:
        if isinstance(payload, list):
            if not payload:
                return _error(None, RpcError(INVALID_REQUEST, "empty batch"))
            if len(payload) > MAX_BATCH:
                return _error(None, RpcError(INVALID_REQUEST, f"batch too large (max {MAX_BATCH})"))
            responses = []
            for index, item in enumerate(payload):
                if index and index % BATCH_CHECKPOINT == 0:
                    await trio.sleep(0)  # a large batch must not hold the event loop
                responses.append(await self.handle_one(item))
            return [r for r in responses if r is not None] or None
        return await self.handle_one(payload)

    async def handle_one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request"))
        request_id = request.get("id")
        is_notification = "id" not in request
        if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return _error(request_id, RpcError(INVALID_REQUEST, "invalid request"))
        if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request id"))
        try:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("rpc %s %s", request["method"], str(request.get("params"))[:200])
            result = await self.call(request["method"], request.get("params", []))
        except RpcError as exc:
            return None if is_notification else _error(request_id, exc)
        except Exception:
            log.exception("internal error in %s", request["method"])
            return None if is_notification else _error(
                request_id, RpcError(INTERNAL_ERROR, "internal error")
            )
        if is_notification:
            return None
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def call(self, method: str, params: Any) -> Any:
        spec = self.methods.get(method)
        if spec is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, "non-array args")
        if len(params) < spec.required:
            raise RpcError(INVALID_PARAMS, f"missing value for required argument {len(params)}")
        if spec.maximum is not None and len(params) > spec.maximum:
            raise RpcError(
                INVALID_PARAMS, f"too many arguments, want at most {spec.maximum}"
            )
        return await spec.handler(self.context, *params)
