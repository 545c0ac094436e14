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

from datanets.abc import SPACE_ADDRESSES, Space
from datanets.params import genesis_words

PrecompileFn = Callable[[ComputationAPI], ComputationAPI]

# Canonical 20-byte addresses, 0x...0900 and up.
DATANETS_ADDRESS = SPACE_ADDRESSES[Space.DATANETS]
MODELS_ADDRESS = SPACE_ADDRESSES[Space.MODELS]
SETTLEMENT_ADDRESS = SPACE_ADDRESSES[Space.SETTLEMENT]


def _registry() -> dict[bytes, PrecompileFn]:
    # Imported here: the adapters import this package's submodules (gas, abi, dispatch).
    from evm_bridge.precompiles.datanets import datanets_precompile
    from evm_bridge.precompiles.models import models_precompile
    from evm_bridge.precompiles.settlement import settlement_precompile

    return {
        DATANETS_ADDRESS: datanets_precompile,
        MODELS_ADDRESS: models_precompile,
        SETTLEMENT_ADDRESS: settlement_precompile,
    }


NATIVE_PRECOMPILES: dict[bytes, PrecompileFn] = _registry()


def genesis_accounts(params: Mapping[str, Any]) -> dict[bytes, dict[str, Any]]:
    """Genesis fields of every precompile account: nonce 1, no code, parameter words.

    Parameters (`datanets.protocol_fee_bps`, `datanets.protocol_treasury`,
    `datanets.challenge_period_blocks`) come from `params`, with defaults
    (`datanets.params.PARAM_DEFAULTS`)."""
    words = genesis_words(params)
    return {
        SPACE_ADDRESSES[space]: {"nonce": 1, "balance": 0, "code": b"", "storage": words[space]}
        for space in Space
    }
