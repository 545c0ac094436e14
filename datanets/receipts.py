"""Inference receipts as EIP-712 typed data: hashing, signing and signer recovery.

The payer signs the receipt for one worker on one chain (chain id and the settlement
precompile's address in the domain), so a receipt cannot be replayed elsewhere; the nonce makes
each receipt unique for its payer. Recovery uses coincurve (libsecp256k1), about 50 µs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import coincurve
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from datanets.abc import SPACE_ADDRESSES, Space
from datanets.types import Receipt

DOMAIN_NAME = "OpenLedger Attribution"
DOMAIN_VERSION = "1"
RECEIPT_TYPE = (
    "InferenceReceipt(uint256 modelId,address payer,address worker,uint64 inputTokens,"
    "uint64 outputTokens,uint256 fee,uint256 nonce,uint256[] contributionIds,uint16[] weights)"
)
_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_RECEIPT_TYPEHASH = keccak(RECEIPT_TYPE.encode())
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_domain_cache: dict[tuple[int, bytes], bytes] = {}


def domain_separator(chain_id: int,
                     verifying_contract: bytes = SPACE_ADDRESSES[Space.SETTLEMENT]) -> bytes:
    key = (chain_id, verifying_contract)
    if key not in _domain_cache:
        _domain_cache[key] = keccak(
            _DOMAIN_TYPEHASH + keccak(DOMAIN_NAME.encode()) + keccak(DOMAIN_VERSION.encode())
            + chain_id.to_bytes(32, "big") + verifying_contract.rjust(32, b"\x00")
        )
    return _domain_cache[key]


def struct_hash(r: Receipt) -> bytes:
    w = 32
    return keccak(
        _RECEIPT_TYPEHASH
        + r.model_id.to_bytes(w, "big")
        + r.payer.rjust(w, b"\x00")
        + r.worker.rjust(w, b"\x00")
        + r.input_tokens.to_bytes(w, "big")
        + r.output_tokens.to_bytes(w, "big")
        + r.fee.to_bytes(w, "big")
        + r.nonce.to_bytes(w, "big")
        + keccak(b"".join(c.to_bytes(w, "big") for c in r.contribution_ids))
        + keccak(b"".join(x.to_bytes(w, "big") for x in r.weights))
    )


def signing_digest(r: Receipt, chain_id: int) -> bytes:
    """The EIP-712 digest: keccak(0x1901 || domainSeparator || structHash)."""
    return keccak(b"\x19\x01" + domain_separator(chain_id) + struct_hash(r))


def sign_receipt(r: Receipt, private_key: bytes, chain_id: int) -> Receipt:
    """The receipt with the payer's signature (r || s || v, v in 27/28)."""
    sig = coincurve.PrivateKey(private_key).sign_recoverable(
        signing_digest(r, chain_id), hasher=None
    )
    return dataclasses.replace(r, signature=sig[:64] + bytes([sig[64] + 27]))


def recover_signer(r: Receipt, chain_id: int) -> bytes | None:
    """The address that signed the receipt, or None for a malformed signature."""
    sig = r.signature
    if len(sig) != 65:
        return None
    v = sig[64] - 27 if sig[64] >= 27 else sig[64]
    s = int.from_bytes(sig[32:64], "big")
    if v not in (0, 1) or not 0 < s <= SECP256K1_N // 2:
        return None  # high-s signatures are malleable copies: refuse them, as EIP-2 does
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            sig[:64] + bytes([v]), signing_digest(r, chain_id), hasher=None
        )
    except Exception:
        return None
    return keccak(pub.format(compressed=False)[1:])[-20:]


def typed_data(r: Receipt, chain_id: int) -> dict[str, Any]:
    """The receipt as an `eth_signTypedData_v4` document (for wallets and eth-account)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "InferenceReceipt": [
                {"name": "modelId", "type": "uint256"},
                {"name": "payer", "type": "address"},
                {"name": "worker", "type": "address"},
                {"name": "inputTokens", "type": "uint64"},
                {"name": "outputTokens", "type": "uint64"},
                {"name": "fee", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "contributionIds", "type": "uint256[]"},
                {"name": "weights", "type": "uint16[]"},
            ],
        },
        "primaryType": "InferenceReceipt",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": "0x" + SPACE_ADDRESSES[Space.SETTLEMENT].hex(),
        },
        "message": {
            "modelId": r.model_id,
            "payer": "0x" + r.payer.hex(),
            "worker": "0x" + r.worker.hex(),
            "inputTokens": r.input_tokens,
            "outputTokens": r.output_tokens,
            "fee": r.fee,
            "nonce": r.nonce,
            "contributionIds": list(r.contribution_ids),
            "weights": list(r.weights),
        },
    }


# -- wire formats --------------------------------------------------------------------------
SETTLE_SIGNATURE = (
    "settle((uint256,address,uint64,uint64,uint256,uint256,uint256[],uint16[],uint8,bytes32,"
    "bytes32)[])"
)
_SETTLE_SELECTOR = keccak(SETTLE_SIGNATURE.encode())[:4]


def abi_tuple(r: Receipt) -> tuple[Any, ...]:
    """The receipt as the settlement precompile's `Receipt` struct (worker left implicit)."""
    if len(r.signature) != 65:
        raise ValueError("receipt is not signed")
    return (r.model_id, "0x" + r.payer.hex(), r.input_tokens, r.output_tokens, r.fee, r.nonce,
            list(r.contribution_ids), list(r.weights), r.signature[64], r.signature[:32],
            r.signature[32:64])


def settle_calldata(receipts: list[Receipt]) -> bytes:
    """Calldata of `settle(Receipt[])` at 0x…0902, for a worker sending a batch."""
    return _SETTLE_SELECTOR + abi_encode([SETTLE_SIGNATURE[7:-1]], [[abi_tuple(r) for r in receipts]])


def to_json(r: Receipt) -> dict[str, Any]:
    """A signed receipt as JSON (amounts and nonce as decimal strings)."""
    return {
        "modelId": r.model_id, "payer": "0x" + r.payer.hex(), "worker": "0x" + r.worker.hex(),
        "inputTokens": r.input_tokens, "outputTokens": r.output_tokens, "fee": str(r.fee),
        "nonce": str(r.nonce), "contributionIds": list(r.contribution_ids),
        "weights": list(r.weights), "signature": "0x" + r.signature.hex(),
    }


def from_json(data: dict[str, Any]) -> Receipt:
    """The inverse of `to_json`; ValueError on a malformed document."""
    try:
        def address(key: str) -> bytes:
            raw = bytes.fromhex(str(data[key]).removeprefix("0x"))
            if len(raw) != 20:
                raise ValueError(f"{key} is not an address")
            return raw

        return Receipt(
            model_id=int(data["modelId"]), payer=address("payer"), worker=address("worker"),
            input_tokens=int(data["inputTokens"]), output_tokens=int(data["outputTokens"]),
            fee=int(data["fee"]), nonce=int(data["nonce"]),
            contribution_ids=tuple(int(c) for c in data["contributionIds"]),
            weights=tuple(int(w) for w in data["weights"]),
            signature=bytes.fromhex(str(data.get("signature", "")).removeprefix("0x")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed receipt: {exc}") from None
