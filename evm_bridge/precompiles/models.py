"""The model registry precompile (0x...0901): register, reprice, retire, query models."""

from __future__ import annotations

from typing import Any

from eth.abc import ComputationAPI

from datanets import model_rules as rules
from datanets.abc import RuleError, Space
from datanets.ledger import MODEL_COUNT, Ledger
from datanets.types import CallContext
from evm_bridge.precompiles.abi import MODELS
from evm_bridge.precompiles.dispatch import Handler, run_call


def _register(ledger: Ledger, ctx: CallContext, a: tuple[Any, ...]) -> int:
    datanet_ids, versions = a[2], a[3]
    if len(datanet_ids) != len(versions):
        raise RuleError("datanetIds and versions differ in length")
    return rules.register_model(ledger, ctx, a[0], a[1], list(zip(datanet_ids, versions,
                                                                   strict=True)), a[4], a[5])


def _get_model(ledger: Ledger, _ctx: CallContext, a: tuple[Any, ...]) -> tuple[Any, ...]:
    m = ledger.get_model(a[0])
    if m is None:
        raise RuleError(f"unknown model {a[0]}")
    return (m.owner, m.base_model, m.adapter_hash, m.price_per_1k, m.owner_share_bps,
            m.retired, [d for d, _ in m.trained_on], [v for _, v in m.trained_on])


HANDLERS: dict[str, Handler] = {
    "registerModel": _register,
    "setPrice": lambda g, c, a: rules.set_price(g, c, a[0], a[1]),
    "retireModel": lambda g, c, a: rules.retire(g, c, a[0]),
    "modelCount": lambda g, c, a: g.m.load(MODEL_COUNT),
    "getModel": _get_model,
}


def models_precompile(computation: ComputationAPI) -> ComputationAPI:
    """Entry point registered at 0x...0901."""
    # GAS: base, storage (strings and the version list by the word), logs: metered by run_call.
    # OPERATION
    return run_call(computation, Space.MODELS, MODELS, HANDLERS)
