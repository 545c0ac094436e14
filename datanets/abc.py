"""The storage interface the rules run over, and the error they raise.

The rules see each precompile account's storage as 256-bit words keyed by 256-bit slots, as
the EVM does; `datanets.ledger` lays typed records out over those words. Any mapping of slot to
word works: a dict in unit tests, the EVM account storage in `evm_bridge.precompiles`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol


class Space(IntEnum):
    """The three storage spaces, one per precompile account."""

    DATANETS = 0
    MODELS = 1
    SETTLEMENT = 2


# The canonical address of each space's precompile account (0x...0900 and up).
SPACE_ADDRESSES: dict[Space, bytes] = {
    Space.DATANETS: (0x0900).to_bytes(20, "big"),
    Space.MODELS: (0x0901).to_bytes(20, "big"),
    Space.SETTLEMENT: (0x0902).to_bytes(20, "big"),
}


class WordStoreAPI(Protocol):
    """One account's storage: 32-byte words at 256-bit slots; absent slots read 0."""

    def load(self, slot: int) -> int: ...

    def store(self, slot: int, value: int) -> None: ...


class RuleError(Exception):
    """A call broke a protocol rule; the message is the revert reason shown to the caller."""


class DictWordStore:
    """An in-memory word store (for tests and for simulating a call before sending it)."""

    def __init__(self) -> None:
        self.words: dict[int, int] = {}

    def load(self, slot: int) -> int:
        return self.words.get(slot, 0)

    def store(self, slot: int, value: int) -> None:
        if value:
            self.words[slot] = value
        else:
            self.words.pop(slot, None)
