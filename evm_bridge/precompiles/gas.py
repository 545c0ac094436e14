"""The gas schedule of the native precompiles, in one place.

Storage is metered as EVM storage is after EIP-2929/2200 (cold first access, warm repeats,
set vs reset on first write), with no refunds; signatures cost what the ECRECOVER precompile
costs; logs what LOG opcodes cost; value leaving a precompile what a value-bearing CALL costs.
"""

from __future__ import annotations

CALL_BASE = 1_000  # dispatch and ABI decoding of any call
COLD_SLOAD = 2_100  # first read of a storage word in the call
WARM_ACCESS = 100  # any later read or write of a word already touched
SSTORE_SET = 20_000  # first write of a word that was zero at the start of the call
SSTORE_RESET = 2_900  # first write of a word that was non-zero
ECRECOVER = 3_000  # one receipt signature
RECEIPT_BASE = 500  # checks and fee split of one receipt
ATTRIBUTION = 150  # one (contribution, weight) entry of a receipt
KECCAK_64 = 42  # one Merkle node hash (KECCAK256 of two words: 30 + 2 * 6)
LOG_BASE = 375
LOG_TOPIC = 375
LOG_DATA_BYTE = 8
VALUE_TRANSFER = 9_000  # OPEN paid out of a precompile account
NEW_ACCOUNT = 25_000  # ... to an account that did not exist


def log_cost(topics: int, data_bytes: int) -> int:
    return LOG_BASE + LOG_TOPIC * topics + LOG_DATA_BYTE * data_bytes
