"""eth_ methods that read account state or execute without committing."""

from __future__ import annotations

from typing import Any

from eth_typing import Address

from evm_bridge.execution import CallError, CallRequest, call, estimate_gas
from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import rpc_method
from openledger_node.rpc.encoding import (
    data,
    parse_address,
    parse_data,
    parse_quantity,
    quantity,
)
from openledger_node.rpc.errors import EXECUTION_REVERTED, RpcError, invalid_params, server_error


@rpc_method("eth_getBalance")
async def get_balance(ctx: RpcContext, account: Any, block: Any = "latest") -> str:
    state = ctx.ledger.state_at(ctx.resolve_block(block))
    return quantity(state.get_balance(Address(parse_address(account))))


@rpc_method("eth_getCode")
async def get_code(ctx: RpcContext, account: Any, block: Any = "latest") -> str:
    state = ctx.ledger.state_at(ctx.resolve_block(block))
    return data(state.get_code(Address(parse_address(account))))


@rpc_method("eth_getStorageAt")
async def get_storage_at(ctx: RpcContext, account: Any, slot: Any, block: Any = "latest") -> str:
    state = ctx.ledger.state_at(ctx.resolve_block(block))
    if isinstance(slot, str) and slot.startswith("0x") and len(slot) > 66:
        raise invalid_params("invalid argument 1: storage slot is more than 32 bytes")
    value = state.get_storage(Address(parse_address(account)), parse_quantity(slot, "slot"))
    return data(value.to_bytes(32, "big"))


@rpc_method("eth_getTransactionCount")
async def get_transaction_count(ctx: RpcContext, account: Any, block: Any = "latest") -> str:
    sender = parse_address(account)
    if block == "pending":
        return quantity(ctx.pool.next_nonce(sender))
    state = ctx.ledger.state_at(ctx.resolve_block(block))
    return quantity(state.get_nonce(Address(sender)))


def parse_call(obj: Any) -> CallRequest:
    """An eth_call / eth_estimateGas call object (`input` preferred over `data`)."""
    if not isinstance(obj, dict):
        raise invalid_params("invalid argument 0: call object expected")
    payload = obj.get("input", obj.get("data"))
    if "input" in obj and "data" in obj and obj["input"] != obj["data"]:
        raise invalid_params('both "data" and "input" are set and not equal')
    return CallRequest(
        sender=parse_address(obj["from"], "from") if obj.get("from") else b"\x00" * 20,
        to=parse_address(obj["to"], "to") if obj.get("to") else b"",
        gas=parse_quantity(obj["gas"], "gas") if obj.get("gas") is not None else None,
        value=parse_quantity(obj["value"], "value") if obj.get("value") is not None else 0,
        data=parse_data(payload, "input") if payload else b"",
    )


def _revert_error(message: str, output: bytes) -> RpcError:
    return RpcError(EXECUTION_REVERTED, message, data(output))


@rpc_method("eth_call")
async def eth_call(ctx: RpcContext, call_obj: Any, block: Any = "latest", overrides: Any = None) -> str:
    if overrides:
        raise invalid_params("state overrides are not supported")
    request = parse_call(call_obj)
    try:
        result = call(ctx.ledger, request, ctx.resolve_block(block))
    except CallError as exc:
        raise server_error(str(exc)) from exc
    if result.success:
        return data(result.output)
    if result.reverted:
        raise _revert_error(result.error, result.output)
    raise server_error(result.error)


@rpc_method("eth_estimateGas")
async def eth_estimate_gas(ctx: RpcContext, call_obj: Any, block: Any = "latest",
                           overrides: Any = None) -> str:
    if overrides:
        raise invalid_params("state overrides are not supported")
    request = parse_call(call_obj)
    try:
        gas, first = estimate_gas(ctx.ledger, request, ctx.resolve_block(block))
    except CallError as exc:
        raise server_error(str(exc)) from exc
    if gas:
        return quantity(gas)
    if first.reverted:
        raise _revert_error(first.error, first.output)
    raise server_error(f"gas required exceeds allowance ({first.error})")
