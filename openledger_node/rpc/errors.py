"""JSON-RPC errors with the codes of the JSON-RPC 2.0 spec and Ethereum's execution APIs."""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth: transaction rejected, state unavailable, ...
EXECUTION_REVERTED = 3  # eth_call / eth_estimateGas revert, with the revert data
LIMIT_EXCEEDED = -32005


class RpcError(Exception):
    """An error returned to the client as a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


def server_error(message: str) -> RpcError:
    return RpcError(SERVER_ERROR, message)
