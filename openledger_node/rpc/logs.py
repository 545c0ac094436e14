"""Log queries: the filter criteria of eth_getLogs, eth_newFilter and `logs` subscriptions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from eth.abc import BlockAPI, ReceiptAPI
from eth_bloom import BloomFilter

from openledger_node.rpc.encoding import format_log, parse_address, parse_hash
from openledger_node.rpc.errors import invalid_params

MAX_TOPICS = 4


@dataclass(frozen=True)
class LogCriteria:
    """Addresses (any of; empty = all) and per-position topic alternatives (None = any)."""

    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = ()

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LogCriteria:
        raw_address = obj.get("address")
        if raw_address is None:
            addresses: tuple[bytes, ...] = ()
        elif isinstance(raw_address, list):
            addresses = tuple(parse_address(a) for a in raw_address)
        else:
            addresses = (parse_address(raw_address),)
        raw_topics = obj.get("topics") or []
        if not isinstance(raw_topics, list):
            raise invalid_params("invalid argument: topics must be an array")
        if len(raw_topics) > MAX_TOPICS:
            raise invalid_params("invalid argument: at most 4 topic positions")
        topics: list[tuple[bytes, ...] | None] = []
        for position in raw_topics:
            if position is None:
                topics.append(None)
            elif isinstance(position, list):
                options = tuple(parse_hash(t, "topic") for t in position if t is not None)
                topics.append(options or None)
            else:
                topics.append((parse_hash(position, "topic"),))
        return cls(addresses, tuple(topics))

    def may_match_bloom(self, bloom: int) -> bool:
        filter_ = BloomFilter(bloom)
        if self.addresses and not any(a in filter_ for a in self.addresses):
            return False
        for options in self.topics:
            if options is not None and not any(t in filter_ for t in options):
                return False
        return True

    def matches(self, log: Any) -> bool:
        if self.addresses and bytes(log.address) not in self.addresses:
            return False
        if len(self.topics) > len(log.topics):
            return False  # geth: a log has at least as many topics as the criteria name
        for options, topic in zip(self.topics, log.topics, strict=False):
            if options is not None and topic.to_bytes(32, "big") not in options:
                return False
        return True


def block_logs(
    block: BlockAPI, receipts: tuple[ReceiptAPI, ...], criteria: LogCriteria
) -> Iterator[dict[str, Any]]:
    """The formatted logs of one block that match `criteria`."""
    if not criteria.may_match_bloom(block.header.bloom):
        return
    log_index = 0
    for tx_index, (tx, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
        for log in receipt.logs:
            if criteria.matches(log):
                yield format_log(log, block.header, tx, tx_index, log_index)
            log_index += 1
