"""Polling filters: eth_newFilter, eth_newBlockFilter, eth_newPendingTransactionFilter.

Each filter collects what happened since it was last polled. Filters not polled for
`idle_timeout` seconds are removed, as geth does (5 minutes), so abandoned filters cannot
grow without bound; each holds at most `max_items` unread items.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from eth.abc import BlockAPI, ReceiptAPI, SignedTransactionAPI

from openledger_node.rpc.encoding import data
from openledger_node.rpc.logs import LogCriteria, block_logs


@dataclass
class Filter:
    kind: str  # "logs" | "blocks" | "pending"
    criteria: LogCriteria | None = None
    from_block: int | None = None
    to_block: int | None = None
    items: list[Any] = field(default_factory=list)
    last_poll: float = field(default_factory=time.monotonic)


class FilterManager:
    def __init__(self, idle_timeout: float = 300.0, max_filters: int = 10_000,
                 max_items: int = 10_000) -> None:
        self._filters: dict[str, Filter] = {}
        self.idle_timeout = idle_timeout
        self.max_filters = max_filters
        self.max_items = max_items

    def install(self, filter_: Filter) -> str:
        self._expire()
        if len(self._filters) >= self.max_filters:
            raise OverflowError("too many filters")
        filter_id = "0x" + secrets.token_hex(16)
        self._filters[filter_id] = filter_
        return filter_id

    def get(self, filter_id: str) -> Filter | None:
        filter_ = self._filters.get(filter_id)
        if filter_ is not None:
            filter_.last_poll = time.monotonic()
        return filter_

    def take_changes(self, filter_id: str) -> list[Any] | None:
        filter_ = self.get(filter_id)
        if filter_ is None:
            return None
        items, filter_.items = filter_.items, []
        return items

    def uninstall(self, filter_id: str) -> bool:
        return self._filters.pop(filter_id, None) is not None

    def on_block(self, block: BlockAPI, receipts: tuple[ReceiptAPI, ...]) -> None:
        number = block.header.block_number
        for filter_ in self._filters.values():
            if len(filter_.items) >= self.max_items:
                continue
            if filter_.kind == "blocks":
                filter_.items.append(data(block.header.hash))
            elif filter_.kind == "logs" and filter_.criteria is not None:
                if filter_.from_block is not None and number < filter_.from_block:
                    continue
                if filter_.to_block is not None and number > filter_.to_block:
                    continue
                filter_.items.extend(block_logs(block, receipts, filter_.criteria))

    def on_pending(self, tx: SignedTransactionAPI) -> None:
        for filter_ in self._filters.values():
            if filter_.kind == "pending" and len(filter_.items) < self.max_items:
                filter_.items.append(data(tx.hash))

    def _expire(self) -> None:
        deadline = time.monotonic() - self.idle_timeout
        for filter_id in [k for k, f in self._filters.items() if f.last_poll < deadline]:
            del self._filters[filter_id]
