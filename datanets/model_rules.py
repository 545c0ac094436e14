"""Rules of the model registry: register a model on datanet versions, reprice, retire."""

from __future__ import annotations

from datanets.abc import RuleError
from datanets.ledger import MODEL_COUNT, Ledger
from datanets.types import BPS, CallContext, Model

MAX_TRAINED_ON = 16  # datanet versions per model
MAX_BASE_MODEL = 256  # bytes


def register_model(ledger: Ledger, ctx: CallContext, base_model: str, adapter_hash: bytes,
                   trained_on: list[tuple[int, int]], price_per_1k: int,
                   owner_share_bps: int) -> int:
    """A model owned by the caller; each (datanet, version) it names must exist, one per
    datanet."""
    if ctx.value:
        raise RuleError("function is not payable")
    if not base_model or len(base_model.encode("utf-8")) > MAX_BASE_MODEL:
        raise RuleError(f"base model id must be 1..{MAX_BASE_MODEL} bytes")
    if len(adapter_hash) != 32 or adapter_hash == b"\x00" * 32:
        raise RuleError("adapter hash is empty")
    if owner_share_bps > BPS:
        raise RuleError("ownerShareBps above 10000")
    if not trained_on:
        raise RuleError("a model must name at least one datanet version")
    if len(trained_on) > MAX_TRAINED_ON:
        raise RuleError(f"more than {MAX_TRAINED_ON} datanet versions")
    seen: set[int] = set()
    for datanet_id, version in trained_on:
        if datanet_id in seen:
            raise RuleError(f"datanet {datanet_id} named twice")
        seen.add(datanet_id)
        if ledger.get_version(datanet_id, version) is None:
            raise RuleError(f"unknown version {version} of datanet {datanet_id}")
    model_id = ledger.next_id(ledger.m, MODEL_COUNT)
    ledger.put_model(model_id, Model(ctx.sender, base_model, adapter_hash, price_per_1k,
                                     owner_share_bps, False, list(trained_on)))
    ctx.emit("ModelRegistered", model_id, ctx.sender, adapter_hash)
    return model_id


def _owned(ledger: Ledger, ctx: CallContext, model_id: int) -> Model:
    if ctx.value:
        raise RuleError("function is not payable")
    model = ledger.get_model(model_id)
    if model is None:
        raise RuleError(f"unknown model {model_id}")
    if ctx.sender != model.owner:
        raise RuleError("only the model owner may change it")
    if model.retired:
        raise RuleError(f"model {model_id} is retired")
    return model


def set_price(ledger: Ledger, ctx: CallContext, model_id: int, price_per_1k: int) -> None:
    model = _owned(ledger, ctx, model_id)
    model.price_per_1k = price_per_1k
    ledger.put_model(model_id, model, full=False)
    ctx.emit("ModelPriceUpdated", model_id, price_per_1k)


def retire(ledger: Ledger, ctx: CallContext, model_id: int) -> None:
    model = _owned(ledger, ctx, model_id)
    model.retired = True
    ledger.put_model(model_id, model, full=False)
    ctx.emit("ModelRetired", model_id)
