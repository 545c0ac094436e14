"""Precompile account storage as the rules' word stores, metered in gas.

Reads and writes go straight to py-evm's state (so a revert anywhere rolls them back with the
transaction's journal); each word's first access in a call is cold, later ones warm, and the
first write of a word costs as SSTORE does (set if it was zero, reset otherwise).
"""

from __future__ import annotations

from eth.abc import ComputationAPI
from eth_typing import Address

from datanets.abc import SPACE_ADDRESSES, Space, WordStoreAPI
from evm_bridge.precompiles import gas


class MeteredWordStore:
    """One precompile account's storage for the duration of one call."""

    def __init__(self, computation: ComputationAPI, address: bytes, writable: bool) -> None:
        self._computation = computation
        self._state = computation.state
        self._address = Address(address)
        self._writable = writable
        self._current: dict[int, int] = {}
        self._written: set[int] = set()

    def load(self, slot: int) -> int:
        if slot in self._current:
            self._computation.consume_gas(gas.WARM_ACCESS, "precompile warm read")
            return self._current[slot]
        self._computation.consume_gas(gas.COLD_SLOAD, "precompile cold read")
        value = self._state.get_storage(self._address, slot)
        self._current[slot] = value
        return value

    def store(self, slot: int, value: int) -> None:
        if not self._writable:
            raise AssertionError("a precompile wrote another precompile's storage")
        if slot not in self._current:
            self.load(slot)
        if slot in self._written or value == self._current[slot]:
            cost = gas.WARM_ACCESS
        else:
            cost = gas.SSTORE_RESET if self._current[slot] else gas.SSTORE_SET
            self._written.add(slot)
        self._computation.consume_gas(cost, "precompile write")
        self._current[slot] = value
        self._state.set_storage(self._address, slot, value)


def stores_for(computation: ComputationAPI, own: Space) -> dict[Space, WordStoreAPI]:
    """Word stores of all three spaces: the calling precompile's writable, the others not."""
    return {
        space: MeteredWordStore(computation, SPACE_ADDRESSES[space], writable=space == own)
        for space in Space
    }
