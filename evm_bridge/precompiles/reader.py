"""Read-only access to the precompiles' records in a committed state (for RPC queries)."""

from __future__ import annotations

from eth.abc import StateAPI
from eth_typing import Address

from datanets.abc import SPACE_ADDRESSES, Space, WordStoreAPI
from datanets.ledger import Ledger


class StateWordStore:
    """One precompile account's storage in `state`, read-only and unmetered."""

    def __init__(self, state: StateAPI, address: bytes) -> None:
        self._state = state
        self._address = Address(address)

    def load(self, slot: int) -> int:
        return self._state.get_storage(self._address, slot)

    def store(self, slot: int, value: int) -> None:
        raise PermissionError("read-only view of committed state")


def ledger_at(state: StateAPI) -> Ledger:
    stores: dict[Space, WordStoreAPI] = {
        space: StateWordStore(state, SPACE_ADDRESSES[space]) for space in Space
    }
    return Ledger(stores)
