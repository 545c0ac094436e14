"""eth_subscribe over WebSocket: newHeads, logs and newPendingTransactions.

Every connection has one bounded outbound channel. Notifications are pushed with
`send_nowait`: a client too slow to keep up loses its connection (closed with a reason), it
never slows the node down.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import trio
from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI

from openledger_node.rpc.encoding import data, format_block
from openledger_node.rpc.logs import LogCriteria, block_logs

log = logging.getLogger(__name__)
OUTBOUND_QUEUE = 4096
MAX_SUBSCRIPTIONS_PER_CONNECTION = 256


@dataclass(eq=False)  # identity semantics: connections live in a set
class Connection:
    """One WebSocket client: its outbound queue and its subscriptions."""

    send_channel: trio.MemorySendChannel[dict[str, Any]]
    subscriptions: dict[str, tuple[str, LogCriteria | None]] = field(default_factory=dict)
    overflowed: bool = False

    def push(self, message: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.send_channel.send_nowait(message)
        except trio.WouldBlock:
            self.overflowed = True  # the writer closes the socket
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.overflowed = True


class SubscriptionHub:
    def __init__(self) -> None:
        self._connections: set[Connection] = set()

    def open(self) -> tuple[Connection, trio.MemoryReceiveChannel[dict[str, Any]]]:
        send, receive = trio.open_memory_channel[dict[str, Any]](OUTBOUND_QUEUE)
        connection = Connection(send)
        self._connections.add(connection)
        return connection, receive

    def close(self, connection: Connection) -> None:
        self._connections.discard(connection)
        connection.send_channel.close()

    def subscribe(self, connection: Connection, kind: str, criteria: LogCriteria | None) -> str:
        if len(connection.subscriptions) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise OverflowError("too many subscriptions on this connection")
        sub_id = "0x" + secrets.token_hex(16)
        connection.subscriptions[sub_id] = (kind, criteria)
        return sub_id

    def unsubscribe(self, connection: Connection, sub_id: str) -> bool:
        return connection.subscriptions.pop(sub_id, None) is not None

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def _notify(self, connection: Connection, sub_id: str, result: Any) -> None:
        connection.push(
            {
                "jsonrpc": "2.0",
                "method": "eth_subscription",
                "params": {"subscription": sub_id, "result": result},
            }
        )

    def on_block(self, block: BlockAPI, receipts: tuple[ReceiptAPI, ...]) -> None:
        head: dict[str, Any] | None = None
        for connection in list(self._connections):
            for sub_id, (kind, criteria) in list(connection.subscriptions.items()):
                if kind == "newHeads":
                    if head is None:
                        head = format_block(block, False)
                        head.pop("transactions", None)
                        head.pop("uncles", None)
                    self._notify(connection, sub_id, head)
                elif kind == "logs" and criteria is not None:
                    for entry in block_logs(block, receipts, criteria):
                        self._notify(connection, sub_id, entry)

    def on_pending(self, tx: SignedTransactionAPI) -> None:
        tx_hash = data(tx.hash)
        for connection in list(self._connections):
            for sub_id, (kind, _) in list(connection.subscriptions.items()):
                if kind == "newPendingTransactions":
                    self._notify(connection, sub_id, tx_hash)
