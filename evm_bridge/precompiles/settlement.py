"""The attribution settlement precompile (0x...0902): escrow, batched receipts, earnings."""

from __future__ import annotations

from typing import Any

from eth.abc import ComputationAPI

from datanets import settlement_rules as rules
from datanets.abc import Space
from datanets.ledger import Ledger
from datanets.params import escrow_unlock_blocks, protocol_fee_bps, settlement_treasury
from datanets.types import CallContext, Receipt
from evm_bridge.precompiles import gas
from evm_bridge.precompiles.abi import SETTLEMENT
from evm_bridge.precompiles.dispatch import Handler, run_call


def _addr(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _receipts(ctx: CallContext, items: tuple[Any, ...]) -> list[Receipt]:
    """ABI tuples -> receipts; the worker is the caller (it is part of what the payer signed)."""
    out = []
    for model_id, payer, tin, tout, fee, nonce, cids, weights, v, r, s in items:
        out.append(Receipt(model_id, _addr(payer), ctx.sender, tin, tout, fee, nonce,
                           tuple(cids), tuple(weights), r + s + bytes([v & 0xFF])))
    return out


def _settle(ledger: Ledger, ctx: CallContext, a: tuple[Any, ...]) -> int:
    return rules.settle(ledger, ctx, _receipts(ctx, a[0]))


def _used(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> bool:
    return ledger.receipt_used(_addr(a[0]), a[1])


HANDLERS: dict[str, Handler] = {
    "deposit": lambda g, c, a: rules.deposit(g, c),
    "requestWithdrawal": lambda g, c, a: rules.request_withdrawal(g, c, a[0]),
    "withdrawEscrow": lambda g, c, a: rules.withdraw_escrow(g, c, a[0]),
    "pendingWithdrawal": lambda g, c, a: g.pending_withdrawal(_addr(a[0])),
    "escrowUnlockBlocks": lambda g, c, a: escrow_unlock_blocks(g.s),
    "authorize": lambda g, c, a: rules.authorize(g, c, _addr(a[0]), a[1]),
    "settle": _settle,
    "withdrawEarnings": lambda g, c, a: rules.withdraw_earnings(g, c),
    "escrowOf": lambda g, c, a: g.escrow(_addr(a[0])),
    "earningsOf": lambda g, c, a: g.earnings(_addr(a[0])),
    "isAuthorized": lambda g, c, a: g.authorized(_addr(a[0]), _addr(a[1])),
    "receiptUsed": _used,
    "protocolFeeBps": lambda g, c, a: protocol_fee_bps(g.s),
    "treasury": lambda g, c, a: "0x" + settlement_treasury(g.s).hex(),
}


def _extra_gas(_ledger: Ledger, name: str, args: tuple[Any, ...]) -> int:
    if name != "settle":
        return 0
    receipts = args[0]
    attributions = sum(len(item[6]) for item in receipts)
    return (gas.ECRECOVER + gas.RECEIPT_BASE) * len(receipts) + gas.ATTRIBUTION * attributions


def settlement_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Entry point registered at 0x...0902."""
    # GAS: per receipt a signature recovery and its checks, per attribution entry its split
    # (charged up front); storage, logs and payouts metered by run_call.
    # OPERATION
    return run_call(computation, Space.SETTLEMENT, SETTLEMENT, HANDLERS, _extra_gas)



