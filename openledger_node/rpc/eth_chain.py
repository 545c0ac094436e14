"""eth_ methods that read blocks, transactions, receipts and logs, and the log filters."""

from __future__ import annotations

from typing import Any

from eth.abc import BlockAPI

from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.dispatcher import rpc_method
from openledger_node.rpc.encoding import (
    format_block,
    format_block_receipts,
    format_receipt,
    format_transaction,
    parse_hash,
    parse_quantity,
    quantity,
)
from openledger_node.rpc.errors import LIMIT_EXCEEDED, RpcError, invalid_params
from openledger_node.rpc.filters import Filter
from openledger_node.rpc.logs import LogCriteria, block_logs


@rpc_method("eth_blockNumber")
async def block_number(ctx: RpcContext) -> str:
    return quantity(ctx.ledger.head.block_number)


def _block_by_tag(ctx: RpcContext, tag: Any) -> BlockAPI | None:
    number = ctx.optional_block_number(tag)
    return None if number is None else ctx.ledger.block_by_number(number)


def _block_by_hash(ctx: RpcContext, block_hash: Any) -> BlockAPI | None:
    header = ctx.ledger.header_by_hash(parse_hash(block_hash, "block hash"))
    return None if header is None else ctx.ledger.block_by_header(header)


def _full(flag: Any) -> bool:
    if not isinstance(flag, bool):
        raise invalid_params("invalid argument 1: expected a boolean")
    return flag


@rpc_method("eth_getBlockByNumber")
async def get_block_by_number(ctx: RpcContext, tag: Any, full: Any = False) -> Any:
    block = _block_by_tag(ctx, tag)
    return None if block is None else format_block(block, _full(full))


@rpc_method("eth_getBlockByHash")
async def get_block_by_hash(ctx: RpcContext, block_hash: Any, full: Any = False) -> Any:
    block = _block_by_hash(ctx, block_hash)
    return None if block is None else format_block(block, _full(full))


@rpc_method("eth_getBlockTransactionCountByNumber")
async def tx_count_by_number(ctx: RpcContext, tag: Any) -> Any:
    block = _block_by_tag(ctx, tag)
    return None if block is None else quantity(len(block.transactions))


@rpc_method("eth_getBlockTransactionCountByHash")
async def tx_count_by_hash(ctx: RpcContext, block_hash: Any) -> Any:
    block = _block_by_hash(ctx, block_hash)
    return None if block is None else quantity(len(block.transactions))


@rpc_method("eth_getUncleCountByBlockNumber")
async def uncle_count_by_number(ctx: RpcContext, tag: Any) -> Any:
    return None if _block_by_tag(ctx, tag) is None else "0x0"


@rpc_method("eth_getUncleCountByBlockHash")
async def uncle_count_by_hash(ctx: RpcContext, block_hash: Any) -> Any:
    return None if _block_by_hash(ctx, block_hash) is None else "0x0"


def _tx_in_block(block: BlockAPI | None, index: Any) -> Any:
    position = parse_quantity(index, "index")
    if block is None or position >= len(block.transactions):
        return None
    return format_transaction(block.transactions[position], block.header, position)


@rpc_method("eth_getTransactionByBlockNumberAndIndex")
async def tx_by_number_and_index(ctx: RpcContext, tag: Any, index: Any) -> Any:
    return _tx_in_block(_block_by_tag(ctx, tag), index)


@rpc_method("eth_getTransactionByBlockHashAndIndex")
async def tx_by_hash_and_index(ctx: RpcContext, block_hash: Any, index: Any) -> Any:
    return _tx_in_block(_block_by_hash(ctx, block_hash), index)


@rpc_method("eth_getTransactionByHash")
async def get_transaction_by_hash(ctx: RpcContext, tx_hash: Any) -> Any:
    raw_hash = parse_hash(tx_hash, "transaction hash")
    location = ctx.ledger.transaction_location(raw_hash)
    if location is not None:
        block = ctx.ledger.block_by_number(location[0])
        assert block is not None
        return format_transaction(block.transactions[location[1]], block.header, location[1])
    pending = ctx.pool.get(raw_hash)
    return None if pending is None else format_transaction(pending)


@rpc_method("eth_getTransactionReceipt")
async def get_transaction_receipt(ctx: RpcContext, tx_hash: Any) -> Any:
    location = ctx.ledger.transaction_location(parse_hash(tx_hash, "transaction hash"))
    if location is None:
        return None
    block = ctx.ledger.block_by_number(location[0])
    assert block is not None
    return format_receipt(block, ctx.ledger.receipts(block), location[1])


@rpc_method("eth_getBlockReceipts")
async def get_block_receipts(ctx: RpcContext, tag: Any) -> Any:
    if isinstance(tag, str) and tag.startswith("0x") and len(tag) == 66:
        block = _block_by_hash(ctx, tag)
    elif isinstance(tag, dict):
        block = ctx.ledger.block_by_header(ctx.resolve_block(tag))
    else:
        block = _block_by_tag(ctx, tag)
    return None if block is None else format_block_receipts(block, ctx.ledger.receipts(block))


# -- logs and filters ------------------------------------------------------------------------
def _range(ctx: RpcContext, obj: dict[str, Any]) -> tuple[int, int]:
    head = ctx.ledger.head.block_number
    start = ctx.optional_block_number(obj.get("fromBlock", "latest"))
    end = ctx.optional_block_number(obj.get("toBlock", "latest"))
    start = head + 1 if start is None else start
    end = head if end is None else end
    return start, end


def query_logs(ctx: RpcContext, obj: Any) -> list[dict[str, Any]]:
    if not isinstance(obj, dict):
        raise invalid_params("invalid argument 0: filter object expected")
    criteria = LogCriteria.from_json(obj)
    if obj.get("blockHash") is not None:
        if "fromBlock" in obj or "toBlock" in obj:
            raise invalid_params("invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock")
        block = _block_by_hash(ctx, obj["blockHash"])
        if block is None:
            raise RpcError(-32000, "unknown block")
        return list(block_logs(block, ctx.ledger.receipts(block), criteria))
    start, end = _range(ctx, obj)
    return _logs_in_range(ctx, criteria, start, end)


def _logs_in_range(ctx: RpcContext, criteria: LogCriteria, start: int,
                   end: int) -> list[dict[str, Any]]:
    """Matching logs of blocks start..end, within the node's range and result limits."""
    if start > end:
        return []
    if end - start + 1 > ctx.max_log_range:
        raise RpcError(LIMIT_EXCEEDED, f"query exceeds max block range {ctx.max_log_range}")
    found: list[dict[str, Any]] = []
    for number in range(start, end + 1):
        header = ctx.ledger.header_by_number(number)
        if header is None or not criteria.may_match_bloom(header.bloom):
            continue
        block = ctx.ledger.block_by_header(header)
        found.extend(block_logs(block, ctx.ledger.receipts(block), criteria))
        if len(found) > ctx.max_logs:
            raise RpcError(LIMIT_EXCEEDED, f"query returned more than {ctx.max_logs} results")
    return found


@rpc_method("eth_getLogs")
async def get_logs(ctx: RpcContext, obj: Any) -> list[dict[str, Any]]:
    return query_logs(ctx, obj)


def _install(ctx: RpcContext, filter_: Filter) -> str:
    try:
        return ctx.filters.install(filter_)
    except OverflowError as exc:
        raise RpcError(LIMIT_EXCEEDED, str(exc)) from exc


@rpc_method("eth_newFilter")
async def new_filter(ctx: RpcContext, obj: Any) -> str:
    if not isinstance(obj, dict):
        raise invalid_params("invalid argument 0: filter object expected")
    criteria = LogCriteria.from_json(obj)
    from_block = ctx.optional_block_number(obj["fromBlock"]) if obj.get("fromBlock") not in (
        None, "latest", "pending") else None
    to_block = parse_quantity(obj["toBlock"]) if isinstance(obj.get("toBlock"), str) and \
        obj["toBlock"].startswith("0x") else None
    return _install(ctx, Filter("logs", criteria, from_block, to_block))


@rpc_method("eth_newBlockFilter")
async def new_block_filter(ctx: RpcContext) -> str:
    return _install(ctx, Filter("blocks"))


@rpc_method("eth_newPendingTransactionFilter")
async def new_pending_filter(ctx: RpcContext, full: Any = False) -> str:
    return _install(ctx, Filter("pending"))


@rpc_method("eth_getFilterChanges")
async def get_filter_changes(ctx: RpcContext, filter_id: Any) -> list[Any]:
    changes = ctx.filters.take_changes(str(filter_id))
    if changes is None:
        raise RpcError(-32000, "filter not found")
    return changes


@rpc_method("eth_getFilterLogs")
async def get_filter_logs(ctx: RpcContext, filter_id: Any) -> list[Any]:
    filter_ = ctx.filters.get(str(filter_id))
    if filter_ is None or filter_.kind != "logs" or filter_.criteria is None:
        raise RpcError(-32000, "filter not found")
    head = ctx.ledger.head.block_number
    start = filter_.from_block if filter_.from_block is not None else 0
    end = min(head, filter_.to_block) if filter_.to_block is not None else head
    return _logs_in_range(ctx, filter_.criteria, start, end)


@rpc_method("eth_uninstallFilter")
async def uninstall_filter(ctx: RpcContext, filter_id: Any) -> bool:
    return ctx.filters.uninstall(str(filter_id))


# -- subscriptions (WebSocket only) ---------------------------------------------------------
@rpc_method("eth_subscribe")
async def subscribe(ctx: RpcContext, kind: Any, options: Any = None) -> str:
    if ctx.connection is None:
        raise RpcError(-32601, "notifications not supported: use a WebSocket connection")
    criteria = None
    if kind == "logs":
        criteria = LogCriteria.from_json(options or {})
    elif kind not in ("newHeads", "newPendingTransactions"):
        raise invalid_params(f"unsupported subscription type {kind!r}")
    try:
        return ctx.subscriptions.subscribe(ctx.connection, kind, criteria)
    except OverflowError as exc:
        raise RpcError(LIMIT_EXCEEDED, str(exc)) from exc


@rpc_method("eth_unsubscribe")
async def unsubscribe(ctx: RpcContext, sub_id: Any) -> bool:
    if ctx.connection is None:
        raise RpcError(-32601, "notifications not supported: use a WebSocket connection")
    return ctx.subscriptions.unsubscribe(ctx.connection, str(sub_id))
