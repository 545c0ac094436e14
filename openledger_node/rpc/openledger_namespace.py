"""The `openledger_` JSON-RPC namespace: the contribution store and datanet/model queries.

Content goes in and out hex-encoded (`openledger_putContent` / `openledger_getContent`), at
most 5 MB a file, into `<home>/contributions`. Queries read the precompiles' records from the
state at a block (default latest) and answer JSON: ids and counts as numbers, OPEN amounts
as decimal strings of wei (they exceed JavaScript's safe integers), hashes and addresses as
0x-hex; `openledger_attribute` weighs a model's output over the contributions it was trained
on (`datanets.attribution`), from the contents this node holds. An unknown datanet,
contribution or model is null (as eth_ methods answer for an unknown transaction). The
OpenLoRA worker calls `openledger_getModel` to check an adapter's content hash.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import trio

from datanets.abc import SPACE_ADDRESSES, Space
from datanets.attribution import AttributionIndex
from datanets.ledger import CONTRIBUTION_COUNT, DATANET_COUNT, MODEL_COUNT, Ledger
from datanets.params import (
    challenge_period,
    escrow_unlock_blocks,
    protocol_fee_bps,
    settlement_treasury,
)
from evm_bridge.precompiles.reader import ledger_at
from openledger_node.content_store import CONTENT_DIR, ContentError, ContentStore, parse_hash
from openledger_node.keystore import KeystoreError, checksum, parse_address
from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import rpc_method
from openledger_node.rpc.errors import RpcError, invalid_params, server_error

MAX_LIST = 1000  # records per list answer
STATUS_NAMES = {1: "pending", 2: "accepted", 3: "rejected", 4: "challenged", 5: "slashed"}


def _store(ctx: RpcContext) -> ContentStore:
    store = ctx.extensions.get("content_store")
    if store is None:
        home = ctx.extensions.get("home")
        if home is None:
            raise server_error("this node has no contribution store")
        store = ContentStore(Path(home) / CONTENT_DIR)
        ctx.extensions["content_store"] = store
    return store  # type: ignore[no-any-return]


def _ledger(ctx: RpcContext, block: Any) -> Ledger:
    return ledger_at(ctx.ledger.state_at(ctx.resolve_block(block)))


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid_params(f"invalid argument: {what} must be a number")
    try:
        number = int(value, 0) if isinstance(value, str) else value
    except ValueError:
        raise invalid_params(f"invalid argument: {what} must be a number") from None
    if number < 0 or number >= 2**256:
        raise invalid_params(f"invalid argument: {what} out of range")
    return number


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


# -- contribution store ----------------------------------------------------------------------
@rpc_method("openledger_putContent")
async def put_content(ctx: RpcContext, data: Any) -> dict[str, Any]:
    """Store hex-encoded content; returns its keccak-256 hash and size."""
    if not isinstance(data, str) or not data.startswith("0x"):
        raise invalid_params("invalid argument 0: hex data with 0x prefix expected")
    try:
        raw = bytes.fromhex(data[2:])
    except ValueError:
        raise invalid_params("invalid argument 0: not hex data") from None
    try:
        digest = _store(ctx).put(raw)
    except ContentError as exc:
        raise invalid_params(str(exc)) from None
    return {"hash": _hex(digest), "size": len(raw)}


@rpc_method("openledger_getContent")
async def get_content(ctx: RpcContext, digest: Any) -> str:
    try:
        key = parse_hash(digest) if isinstance(digest, str) else b""
        data = _store(ctx).get(key)
    except ContentError as exc:
        raise invalid_params(f"invalid argument 0: {exc}") from None
    if data is None:
        raise server_error(f"content {digest} not found")
    return _hex(data)


# -- queries -------------------------------------------------------------------------------
def datanet_json(ledger: Ledger, datanet_id: int, with_contributions: bool) -> dict[str, Any]:
    dn = ledger.get_datanet(datanet_id)
    if dn is None:
        raise RpcError(-32000, f"unknown datanet {datanet_id}")
    out: dict[str, Any] = {
        "id": datanet_id, "owner": checksum(dn.owner), "name": dn.name,
        "metadataUri": dn.metadata_uri, "stake": str(dn.stake), "fee": str(dn.fee),
        "rejectForfeitBps": dn.reject_forfeit_bps, "curatorBond": str(dn.curator_bond),
        "challengeBond": str(dn.challenge_bond), "contributionCount": dn.contribution_count,
        "acceptedCount": dn.accepted_count, "versionCount": dn.version_count,
    }
    if with_contributions:
        ids = [ledger.datanet_contribution(datanet_id, i)
               for i in range(min(dn.contribution_count, MAX_LIST))]
        out["contributions"] = [contribution_json(ledger, cid) for cid in ids]
        out["versions"] = []
        for number in range(1, dn.version_count + 1):
            v = ledger.get_version(datanet_id, number)
            if v is not None:
                out["versions"].append({"version": number, "acceptedCount": v.accepted_count,
                                        "root": _hex(v.root), "blockNumber": v.block_number})
    return out


def contribution_json(ledger: Ledger, cid: int) -> dict[str, Any]:
    c = ledger.get_contribution(cid)
    if c is None:
        raise RpcError(-32000, f"unknown contribution {cid}")
    return {
        "id": cid, "datanetId": c.datanet_id, "contributor": checksum(c.contributor),
        "contentHash": _hex(c.content_hash), "size": c.size, "metadataUri": c.metadata_uri,
        "status": STATUS_NAMES.get(int(c.status), "unknown"), "stake": str(c.stake),
        "curator": checksum(c.curator) if c.curator != b"\x00" * 20 else None,
        "acceptIndex": c.accept_index if c.status >= 2 else None,
        "acceptedAt": c.accepted_at or None,
        "challenger": checksum(c.challenger) if c.challenger != b"\x00" * 20 else None,
    }


def model_json(ledger: Ledger, model_id: int) -> dict[str, Any]:
    m = ledger.get_model(model_id)
    if m is None:
        raise RpcError(-32000, f"unknown model {model_id}")
    return {
        "id": model_id, "owner": checksum(m.owner), "baseModel": m.base_model,
        "adapterHash": _hex(m.adapter_hash), "pricePer1kTokens": str(m.price_per_1k),
        "ownerShareBps": m.owner_share_bps, "retired": m.retired,
        "trainedOn": [{"datanetId": d, "version": v} for d, v in m.trained_on],
    }


def _or_null(build: Any, *args: Any) -> dict[str, Any] | None:
    try:
        return build(*args)  # type: ignore[no-any-return]
    except RpcError as exc:
        if exc.message.startswith("unknown "):
            return None
        raise


@rpc_method("openledger_getDatanet")
async def get_datanet(ctx: RpcContext, datanet_id: Any,
                      block: Any = "latest") -> dict[str, Any] | None:
    """A datanet with its contributions (up to 1,000) and versions."""
    return _or_null(datanet_json, _ledger(ctx, block), _id(datanet_id, "datanet id"), True)


@rpc_method("openledger_listDatanets")
async def list_datanets(ctx: RpcContext, block: Any = "latest") -> list[dict[str, Any]]:
    ledger = _ledger(ctx, block)
    count = ledger.d.load(DATANET_COUNT)
    return [datanet_json(ledger, i, False) for i in range(1, min(count, MAX_LIST) + 1)]


@rpc_method("openledger_getContribution")
async def get_contribution(ctx: RpcContext, cid: Any,
                           block: Any = "latest") -> dict[str, Any] | None:
    return _or_null(contribution_json, _ledger(ctx, block), _id(cid, "contribution id"))


@rpc_method("openledger_getModel")
async def get_model(ctx: RpcContext, model_id: Any,
                    block: Any = "latest") -> dict[str, Any] | None:
    """A registered model: owner, base model, adapter content hash, price, versions."""
    return _or_null(model_json, _ledger(ctx, block), _id(model_id, "model id"))


@rpc_method("openledger_listModels")
async def list_models(ctx: RpcContext, block: Any = "latest") -> list[dict[str, Any]]:
    ledger = _ledger(ctx, block)
    count = ledger.m.load(MODEL_COUNT)
    return [model_json(ledger, i) for i in range(1, min(count, MAX_LIST) + 1)]


@rpc_method("openledger_getAccount")
async def get_account(ctx: RpcContext, account: Any, block: Any = "latest") -> dict[str, Any]:
    """An address's inference escrow, its withdrawal request, and accrued earnings."""
    try:
        address = parse_address(account) if isinstance(account, str) else b""
    except KeystoreError as exc:
        raise invalid_params(f"invalid argument 0: {exc}") from None
    if len(address) != 20:
        raise invalid_params("invalid argument 0: address expected")
    ledger = _ledger(ctx, block)
    pending, unlock_block = ledger.pending_withdrawal(address)
    return {"address": checksum(address), "escrow": str(ledger.escrow(address)),
            "earnings": str(ledger.earnings(address)),
            "pendingWithdrawal": {"amount": str(pending), "unlockBlock": unlock_block}}


@rpc_method("openledger_protocolInfo")
async def protocol_info(ctx: RpcContext) -> dict[str, Any]:
    """Precompile addresses and the protocol parameters in force."""
    ledger = _ledger(ctx, "latest")
    return {
        "datanets": checksum(SPACE_ADDRESSES[Space.DATANETS]),
        "models": checksum(SPACE_ADDRESSES[Space.MODELS]),
        "settlement": checksum(SPACE_ADDRESSES[Space.SETTLEMENT]),
        "protocolFeeBps": protocol_fee_bps(ledger.s),
        "treasury": checksum(settlement_treasury(ledger.s)),
        "challengePeriodBlocks": challenge_period(ledger.d),
        "escrowUnlockBlocks": escrow_unlock_blocks(ledger.s),
        "contributionCount": ledger.d.load(CONTRIBUTION_COUNT),
        "maxContentSize": 5 * 1024 * 1024,
    }


# -- attribution ---------------------------------------------------------------------------
MAX_INDEX_BYTES = 4 * 1024 * 1024  # contents indexed per model (about 4 s of pure Python)
_INDEX_CACHE_SIZE = 4


def _model_contributions(ledger: Ledger, model_id: int) -> list[tuple[int, bytes]]:
    """(contribution id, content hash) of every entry of the versions a model names."""
    model = ledger.get_model(model_id)
    if model is None:
        raise invalid_params(f"unknown model {model_id}")
    out = []
    for datanet_id, number in model.trained_on:
        version = ledger.get_version(datanet_id, number)
        for index in range(version.accepted_count if version else 0):
            cid = ledger.accepted_entry(datanet_id, index)
            contribution = ledger.get_contribution(cid)
            if contribution is not None:
                out.append((cid, contribution.content_hash))
    return out


async def _attribution_index(ctx: RpcContext,
                             model_id: int) -> tuple[AttributionIndex, list[int]]:
    """The model's index over the contents this node holds, cached: a model's versions never
    change, so neither does its index (unless contents arrive that were missing). The state
    and the store are read here; the suffix array is built in a worker thread, so a large
    datanet delays the event loop by GIL switches instead of stalling it for the whole build."""
    cache: OrderedDict[int, tuple[AttributionIndex, list[int]]] = ctx.extensions.setdefault(
        "attribution_indexes", OrderedDict())
    cached = cache.get(model_id)
    if cached is not None and not cached[1]:
        cache.move_to_end(model_id)
        return cached
    store = _store(ctx)
    texts: dict[int, str] = {}
    missing: list[int] = []
    total = 0
    for cid, digest in _model_contributions(_ledger(ctx, "latest"), model_id):
        data = store.get(digest)
        if data is None:
            missing.append(cid)
            continue
        total += len(data)
        if total > MAX_INDEX_BYTES:
            raise server_error(f"model {model_id}'s datanets exceed {MAX_INDEX_BYTES} bytes to "
                               "index on this node")
        texts[cid] = data.decode("utf-8", errors="replace")
    lock: trio.Lock = ctx.extensions.setdefault("attribution_lock", trio.Lock())
    async with lock:  # one build at a time
        index = await trio.to_thread.run_sync(AttributionIndex, texts)
    entry = (index, missing)
    cache[model_id] = entry
    while len(cache) > _INDEX_CACHE_SIZE:
        cache.popitem(last=False)
    return entry


@rpc_method("openledger_attribute")
async def attribute(ctx: RpcContext, model_id: Any, text: Any,
                    max_contributions: Any = 64) -> dict[str, Any]:
    """Attribution weights of `text` (a model's output) over the contributions of the datanet
    versions the model was trained on, with the matched spans; contributions whose contents
    this node lacks are listed as missing (and cannot be credited)."""
    if not isinstance(text, str):
        raise invalid_params("invalid argument 1: text expected")
    limit = _id(max_contributions, "maxContributions")
    if not 1 <= limit <= 64:
        raise invalid_params("invalid argument 2: maxContributions must be within 1..64")
    index, missing = await _attribution_index(ctx, _id(model_id, "model id"))
    result = index.attribute(text, limit)
    return {
        "weights": {str(cid): bps for cid, bps in result.weights.items()},
        "spans": [{"start": s.start, "length": s.length,
                   "contributions": {str(c): n for c, n in s.occurrences.items()}}
                  for s in result.spans],
        "missing": missing,
    }
