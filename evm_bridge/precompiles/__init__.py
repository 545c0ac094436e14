"""OpenLedger's native precompiles: datanets, the model registry and attribution settlement.

Each precompile lives in its own module as a thin adapter over the pure rules in `datanets/`:
ABI-encoded calls in, EVM logs and return data out, state in the storage of the precompile's
own account. `NATIVE_PRECOMPILES` is the one mapping the VM merges into Prague's precompiles;
`genesis_accounts` gives each precompile account nonce 1 (so the EIP-161 empty-account cleanup
never wipes its storage) and the protocol parameters it reads from storage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eth.abc import ComputationAPI

PrecompileFn = Callable[[ComputationAPI], ComputationAPI]

# Canonical 20-byte addresses, 0x...0900 and up.
DATANETS_ADDRESS = (0x0900).to_bytes(20, "big")
MODELS_ADDRESS = (0x0901).to_bytes(20, "big")
SETTLEMENT_ADDRESS = (0x0902).to_bytes(20, "big")

NATIVE_PRECOMPILES: dict[bytes, PrecompileFn] = {}


def genesis_accounts(params: Mapping[str, Any]) -> dict[bytes, dict[str, Any]]:
    """Genesis fields of every precompile account: nonce 1, no code, parameter slots."""
    del params  # parameters are read here once the settlement precompile lands
    return {
        address: {"nonce": 1, "balance": 0, "code": b"", "storage": {}}
        for address in (DATANETS_ADDRESS, MODELS_ADDRESS, SETTLEMENT_ADDRESS)
    }
