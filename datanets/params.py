"""Protocol parameters held in the precompile accounts' storage from genesis.

Genesis (`genesis.params`) may set any of `PARAM_DEFAULTS`' keys (dotted, as the other
genesis parameters); `genesis_words` turns them
into the words written at genesis, and the rules read them back with the getters below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datanets.abc import Space, WordStoreAPI
from datanets.ledger import addr_int, int_addr
from datanets.types import BPS, BURN

# A treasury nobody holds a key for unless genesis names one (devnet presets should).
DEFAULT_TREASURY = "0x00000000000000000000000000000000000009ff"

PARAM_DEFAULTS: dict[str, Any] = {
    "datanets.protocol_fee_bps": 500,  # the protocol's share of every inference fee (5%)
    "datanets.protocol_treasury": DEFAULT_TREASURY,  # gets the protocol share, slashed stakes
    "datanets.challenge_period_blocks": 100,  # blocks an accepted contribution is challengeable
    # Blocks between a payer's withdrawal request and its escrow leaving, so workers can settle
    # the receipts they hold first (0: withdrawals are immediate, as on the devnet).
    "datanets.escrow_unlock_blocks": 0,
    # Where forfeited stakes and slashed bonds go: "treasury" or "burn".
    "datanets.slash_to": "treasury",
}

# Parameter slots (below 16, beside the counters of datanets.ledger).
SETTLEMENT_FEE_BPS = 1
SETTLEMENT_TREASURY = 2
SETTLEMENT_UNLOCK_BLOCKS = 3
DATANETS_CHALLENGE_PERIOD = 2
DATANETS_TREASURY = 3
DATANETS_SLASH_BURN = 4


def _address(value: Any) -> bytes:
    if isinstance(value, bytes) and len(value) == 20:
        return value
    text = str(value)
    raw = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    if len(raw) != 20:
        raise ValueError(f"protocol_treasury must be a 20-byte address, got {value!r}")
    return raw


def resolve(params: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `params`, checked."""
    unknown = sorted(k for k in params if k.startswith("datanets.") and k not in PARAM_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown genesis parameter(s) {', '.join(unknown)}; known: "
                         f"{', '.join(PARAM_DEFAULTS)}")
    merged = {**PARAM_DEFAULTS, **{k: v for k, v in params.items() if k in PARAM_DEFAULTS}}
    merged = {k.removeprefix("datanets."): v for k, v in merged.items()}
    fee_bps = int(merged["protocol_fee_bps"])
    if not 0 <= fee_bps <= BPS:
        raise ValueError(f"protocol_fee_bps must be within 0..{BPS}, got {fee_bps}")
    period = int(merged["challenge_period_blocks"])
    if period < 0:
        raise ValueError(f"challenge_period_blocks must be >= 0, got {period}")
    unlock = int(merged["escrow_unlock_blocks"])
    if unlock < 0:
        raise ValueError(f"escrow_unlock_blocks must be >= 0, got {unlock}")
    slash_to = str(merged["slash_to"])
    if slash_to not in ("treasury", "burn"):
        raise ValueError(f"slash_to must be 'treasury' or 'burn', got {slash_to!r}")
    return {
        "slash_to": slash_to,
        "protocol_fee_bps": fee_bps,
        "protocol_treasury": _address(merged["protocol_treasury"]),
        "challenge_period_blocks": period,
        "escrow_unlock_blocks": unlock,
    }


def genesis_words(params: Mapping[str, Any]) -> dict[Space, dict[int, int]]:
    """The storage words of each space at genesis."""
    p = resolve(params)
    treasury = addr_int(p["protocol_treasury"])
    return {
        Space.DATANETS: {
            DATANETS_CHALLENGE_PERIOD: p["challenge_period_blocks"],
            DATANETS_TREASURY: treasury,
            DATANETS_SLASH_BURN: int(p["slash_to"] == "burn"),
        },
        Space.MODELS: {},
        Space.SETTLEMENT: {
            SETTLEMENT_FEE_BPS: p["protocol_fee_bps"],
            SETTLEMENT_TREASURY: treasury,
            SETTLEMENT_UNLOCK_BLOCKS: p["escrow_unlock_blocks"],
        },
    }


def protocol_fee_bps(settlement: WordStoreAPI) -> int:
    return settlement.load(SETTLEMENT_FEE_BPS)


def settlement_treasury(settlement: WordStoreAPI) -> bytes:
    return int_addr(settlement.load(SETTLEMENT_TREASURY))


def escrow_unlock_blocks(settlement: WordStoreAPI) -> int:
    return settlement.load(SETTLEMENT_UNLOCK_BLOCKS)


def challenge_period(datanets: WordStoreAPI) -> int:
    return datanets.load(DATANETS_CHALLENGE_PERIOD)


def slash_recipient(datanets: WordStoreAPI) -> bytes:
    """Who receives forfeited stakes and slashed bonds: the treasury, or BURN."""
    if datanets.load(DATANETS_SLASH_BURN):
        return BURN
    return int_addr(datanets.load(DATANETS_TREASURY))
