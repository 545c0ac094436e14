"""eth_ methods that submit transactions or price them."""

from __future__ import annotations

from typing import Any

from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_account import Account

from evm_bridge.execution import CallError, estimate_gas
from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import rpc_method
from openledger_node.rpc.encoding import (
    address,
    data,
    effective_gas_price,
    parse_data,
    parse_quantity,
    quantity,
)
from openledger_node.rpc.errors import INVALID_PARAMS, RpcError, invalid_params, server_error
from openledger_node.rpc.eth_state import parse_call
from openledger_node.txpool import TxRejected

DEFAULT_PRIORITY_FEE = 1_000_000_000  # 1 gwei
MAX_FEE_HISTORY_BLOCKS = 1024


def next_base_fee(ctx: RpcContext) -> int:
    return int(calculate_expected_base_fee_per_gas(ctx.ledger.head))


def submit(ctx: RpcContext, raw: bytes) -> str:
    try:
        tx = ctx.pool.add_raw(raw)
    except TxRejected as exc:
        if exc.malformed:
            raise RpcError(INVALID_PARAMS, str(exc)) from exc
        raise server_error(str(exc)) from exc
    ctx.on_transaction()
    return data(tx.hash)


@rpc_method("eth_sendRawTransaction")
async def send_raw_transaction(ctx: RpcContext, raw: Any) -> str:
    return submit(ctx, parse_data(raw, "transaction"))


@rpc_method("eth_accounts")
async def accounts(ctx: RpcContext) -> list[str]:
    return [address(a) for a in ctx.dev_keys]


@rpc_method("eth_sendTransaction")
async def send_transaction(ctx: RpcContext, tx_obj: Any) -> str:
    """Sign with an unlocked devnet account and submit; fills nonce, gas and fees."""
    request = parse_call(tx_obj)
    key = ctx.dev_keys.get(request.sender)
    if key is None:
        raise server_error("unknown account")
    fields: dict[str, Any] = {
        "chainId": ctx.ledger.chain_id,
        "nonce": parse_quantity(tx_obj["nonce"], "nonce") if tx_obj.get("nonce") is not None
        else ctx.pool.next_nonce(request.sender),
        "value": request.value,
        "data": request.data,
    }
    if request.to:
        fields["to"] = request.to
    if request.gas is not None:
        fields["gas"] = request.gas
    else:
        try:
            gas, first = estimate_gas(ctx.ledger, request)
        except CallError as exc:
            raise server_error(str(exc)) from exc
        if not gas:
            raise server_error(f"gas required exceeds allowance ({first.error})")
        fields["gas"] = gas
    if tx_obj.get("gasPrice") is not None:
        fields["gasPrice"] = parse_quantity(tx_obj["gasPrice"], "gasPrice")
    else:
        tip = (parse_quantity(tx_obj["maxPriorityFeePerGas"], "maxPriorityFeePerGas")
               if tx_obj.get("maxPriorityFeePerGas") is not None else DEFAULT_PRIORITY_FEE)
        fields["maxPriorityFeePerGas"] = tip
        fields["maxFeePerGas"] = (parse_quantity(tx_obj["maxFeePerGas"], "maxFeePerGas")
                                  if tx_obj.get("maxFeePerGas") is not None
                                  else 2 * next_base_fee(ctx) + tip)
        fields["type"] = 2
    signed = Account.sign_transaction(fields, key)
    return submit(ctx, bytes(signed.raw_transaction))


@rpc_method("eth_gasPrice")
async def gas_price(ctx: RpcContext) -> str:
    return quantity(next_base_fee(ctx) + DEFAULT_PRIORITY_FEE)


@rpc_method("eth_maxPriorityFeePerGas")
async def max_priority_fee(ctx: RpcContext) -> str:
    return quantity(DEFAULT_PRIORITY_FEE)


@rpc_method("eth_blobBaseFee")
async def blob_base_fee(ctx: RpcContext) -> str:
    return quantity(1)


@rpc_method("eth_feeHistory")
async def fee_history(ctx: RpcContext, block_count: Any, newest: Any,
                      percentiles: Any = None) -> dict[str, Any]:
    count = parse_quantity(block_count, "blockCount")
    if count == 0:
        return {"oldestBlock": "0x0", "baseFeePerGas": [], "gasUsedRatio": []}
    count = min(count, MAX_FEE_HISTORY_BLOCKS)
    percentiles = percentiles or []
    if not isinstance(percentiles, list) or any(
        not isinstance(p, (int, float)) or not 0 <= p <= 100 for p in percentiles
    ) or percentiles != sorted(percentiles):
        raise invalid_params("invalid reward percentiles: numbers in [0, 100], ascending")
    last = ctx.resolve_block(newest).block_number
    first = max(0, last - count + 1)
    base_fees, ratios, rewards = [], [], []
    header: Any = None
    for number in range(first, last + 1):
        block = ctx.ledger.block_by_number(number)
        assert block is not None
        header = block.header
        base_fees.append(quantity(header.base_fee_per_gas))
        ratios.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
        if percentiles:
            rewards.append(_block_rewards(ctx, block, percentiles))
    assert header is not None
    base_fees.append(quantity(int(calculate_expected_base_fee_per_gas(header))))
    result: dict[str, Any] = {
        "oldestBlock": quantity(first),
        "baseFeePerGas": base_fees,
        "gasUsedRatio": ratios,
        "baseFeePerBlobGas": ["0x1"] * len(base_fees),
        "blobGasUsedRatio": [0.0] * len(ratios),
    }
    if percentiles:
        result["reward"] = rewards
    return result


def _block_rewards(ctx: RpcContext, block: Any, percentiles: list[float]) -> list[str]:
    """Effective tips at gas-weighted percentiles, as geth computes them."""
    header: Any = block.header
    if not block.transactions:
        return ["0x0"] * len(percentiles)
    receipts = ctx.ledger.receipts(block)
    tips = []
    previous = 0
    for tx, receipt in zip(block.transactions, receipts, strict=True):
        tip = effective_gas_price(tx, header.base_fee_per_gas) - header.base_fee_per_gas
        tips.append((tip, receipt.gas_used - previous))
        previous = receipt.gas_used
    tips.sort()
    out = []
    index, cumulative = 0, tips[0][1]
    for p in percentiles:
        threshold = header.gas_used * p / 100
        while cumulative < threshold and index < len(tips) - 1:
            index += 1
            cumulative += tips[index][1]
        out.append(quantity(tips[index][0]))
    return out
