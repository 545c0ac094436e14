"""Inference receipts: what one completion consumed, ready for on-chain attribution settlement.

Hashes are keccak-256 (the EVM's hash) of the UTF-8 prompt and output text, so a contract or
any client can recompute them. The fee is ``total_tokens * price_per_1k_tokens // 1000`` in wei.
Attribution weights (contribution id -> basis points) come from the attribution engine
(`openlora.attribution`: the node's ``openledger_attribute`` beside a node, else the adapter's
``contributions.jsonl``); `InferenceReceipt.to_chain_receipt` maps it onto the settlement receipt of
``datanets`` (the chain's), to which the payer adds an EIP-712 signature. The fee rule is the
settlement's minimum: price x (input + output tokens) // 1000.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_hash.auto import keccak

from datanets.types import Receipt as ChainReceipt


def keccak_hex(text: str) -> str:
    return "0x" + keccak(text.encode("utf-8")).hex()


@dataclass(frozen=True)
class InferenceReceipt:
    receipt_id: str
    """0x-hex 32 bytes, unique per completion (the chain rejects a receipt id twice)."""
    model: str
    """The adapter name served (or the base model's name)."""
    model_id: str | None
    """The chain registry's model id for the adapter; None for the base model alone."""
    adapter_hash: str | None
    base_model: str
    prompt_hash: str
    output_hash: str
    prompt_tokens: int
    completion_tokens: int
    price_per_1k_tokens: int
    fee: int
    """Wei of OPEN."""
    finish_reason: str
    created: int
    attribution: dict[str, int] = field(default_factory=dict)
    """Contribution id -> basis points (summing to 10,000 once filled in)."""
    worker: str | None = None
    """The worker's address, when it has one."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fee"] = str(self.fee)  # wei values exceed JSON's safe integers
        data["price_per_1k_tokens"] = str(self.price_per_1k_tokens)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_chain_receipt(self, payer: bytes, worker: bytes) -> ChainReceipt:
        """The chain's (unsigned) settlement receipt for this inference.

        The nonce is the receipt id as an integer, so it is unique per receipt; the payer signs
        the result as EIP-712 typed data (``datanets.receipts``) before the worker settles it.
        """
        if self.model_id is None or not str(self.model_id).isdigit():
            raise ValueError(f"model id {self.model_id!r} is not a chain registry id")
        if len(payer) != 20 or len(worker) != 20:
            raise ValueError("payer and worker must be 20-byte addresses")
        if not self.attribution:
            raise ValueError(f"receipt {self.receipt_id} has no attribution weights: the output "
                             "reuses no contribution, and settlement needs at least one")
        if sum(self.attribution.values()) != 10_000:
            raise ValueError(f"receipt {self.receipt_id}: attribution weights sum to "
                             f"{sum(self.attribution.values())}, not 10000")
        ids = tuple(sorted(int(c) for c in self.attribution))
        return ChainReceipt(
            model_id=int(self.model_id),
            payer=payer,
            worker=worker,
            input_tokens=self.prompt_tokens,
            output_tokens=self.completion_tokens,
            fee=self.fee,
            nonce=int(self.receipt_id, 16),
            contribution_ids=ids,
            weights=tuple(self.attribution[str(c)] for c in ids),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InferenceReceipt:
        values = dict(data)
        values["fee"] = int(values["fee"])
        values["price_per_1k_tokens"] = int(values["price_per_1k_tokens"])
        values["attribution"] = {str(k): int(v) for k, v in (values.get("attribution") or {}).items()}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> InferenceReceipt:
        return cls.from_dict(json.loads(text))


def make_receipt(
    *,
    model: str,
    model_id: str | None,
    adapter_hash: str | None,
    base_model: str,
    prompt: str,
    output: str,
    prompt_tokens: int,
    completion_tokens: int,
    price_per_1k_tokens: int,
    finish_reason: str,
    worker: str | None = None,
    attribution: dict[int, int] | None = None,
) -> InferenceReceipt:
    if price_per_1k_tokens < 0 or prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("token counts and prices must not be negative")
    fee = (prompt_tokens + completion_tokens) * price_per_1k_tokens // 1000
    return InferenceReceipt(
        receipt_id="0x" + uuid.uuid4().bytes.hex() + uuid.uuid4().bytes.hex(),
        model=model,
        model_id=model_id,
        adapter_hash=adapter_hash,
        base_model=base_model,
        prompt_hash=keccak_hex(prompt),
        output_hash=keccak_hex(output),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        price_per_1k_tokens=price_per_1k_tokens,
        fee=fee,
        finish_reason=finish_reason,
        created=int(time.time()),
        attribution={str(k): int(v) for k, v in sorted((attribution or {}).items())},
        worker=worker,
    )
