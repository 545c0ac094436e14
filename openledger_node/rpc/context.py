"""What JSON-RPC methods can reach: the node's services, behind one small object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth.abc import BlockHeaderAPI

from evm_bridge.ledger import Ledger
from openledger_node.rpc.encoding import parse_hash, parse_quantity
from openledger_node.rpc.errors import RpcError, invalid_params, server_error
from openledger_node.txpool import TxPool

if TYPE_CHECKING:
    from openledger_node.rpc.filters import FilterManager
    from openledger_node.rpc.subscriptions import Connection, SubscriptionHub


@dataclass
class RpcContext:
    ledger: Ledger
    pool: TxPool
    filters: FilterManager
    subscriptions: SubscriptionHub
    client_version: str
    # Called after a transaction is admitted, so instant block production can start.
    on_transaction: Callable[[], None] = lambda: None
    # Unlocked devnet accounts (address -> private key) for eth_accounts / eth_sendTransaction.
    dev_keys: dict[bytes, bytes] = field(default_factory=dict)
    peer_count: Callable[[], int] = lambda: 0
    syncing: Callable[[], Any] = lambda: False
    max_log_range: int = 10_000
    max_logs: int = 20_000
    # The WebSocket connection a request came on (None over HTTP).
    connection: Connection | None = None
    # Other services may hang their objects here (the content store, a consensus status...).
    extensions: dict[str, Any] = field(default_factory=dict)

    def resolve_block(self, tag: Any = "latest") -> BlockHeaderAPI:
        """A header from a block tag, number, or EIP-1898 object; RpcError if unknown."""
        ledger = self.ledger
        if isinstance(tag, dict):
            if "blockHash" in tag:
                header = ledger.header_by_hash(parse_hash(tag["blockHash"], "blockHash"))
                if header is None:
                    raise server_error("header not found")
                return header
            if "blockNumber" in tag:
                return self.resolve_block(tag["blockNumber"])
            raise invalid_params("invalid argument: block object needs blockHash or blockNumber")
        if tag is None or tag in ("latest", "pending", "safe", "finalized"):
            return ledger.head  # immediate finality: latest, safe and finalized agree
        if tag == "earliest":
            header = ledger.header_by_number(0)
        else:
            if isinstance(tag, str) and not tag.startswith("0x"):
                raise invalid_params(f"invalid argument: unknown block tag {tag!r}")
            header = ledger.header_by_number(parse_quantity(tag, "block number"))
        if header is None:
            raise server_error("header not found")
        return header

    def optional_block_number(self, tag: Any) -> int | None:
        """A block number for tags that may point past the head (None if beyond)."""
        if tag in (None, "latest", "pending", "safe", "finalized"):
            return self.ledger.head.block_number
        if tag == "earliest":
            return 0
        if isinstance(tag, str) and not tag.startswith("0x"):
            raise invalid_params(f"invalid argument: unknown block tag {tag!r}")
        number = parse_quantity(tag, "block number")
        return number if number <= self.ledger.head.block_number else None


__all__ = ["RpcContext", "RpcError"]
