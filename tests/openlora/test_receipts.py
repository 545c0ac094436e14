"""Inference receipts: hashes, fees and a JSON form that round-trips."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak

from openlora.receipts import InferenceReceipt, make_receipt


def _receipt(**kw) -> InferenceReceipt:
    fields = dict(model="m", model_id="7", adapter_hash="0x" + "ab" * 32, base_model="base",
                  prompt="hi", output="there", prompt_tokens=1200, completion_tokens=300,
                  price_per_1k_tokens=10**18 + 1, finish_reason="stop")
    fields.update(kw)
    return make_receipt(**fields)


def test_hashes_fee_and_round_trip():
    r = _receipt()
    assert r.prompt_hash == "0x" + keccak(b"hi").hex()
    assert r.output_hash == "0x" + keccak(b"there").hex()
    assert r.fee == 1500 * (10**18 + 1) // 1000
    assert r.total_tokens == 1500
    again = InferenceReceipt.from_json(r.to_json())
    assert again == r
    assert isinstance(r.to_dict()["fee"], str)  # wei stays exact in JSON
    assert r.attribution == {}
    assert len(bytes.fromhex(r.receipt_id[2:])) == 32
    assert _receipt().receipt_id != r.receipt_id


def test_negative_values_are_refused():
    with pytest.raises(ValueError):
        _receipt(price_per_1k_tokens=-1)


def test_maps_onto_the_chains_settlement_receipt():
    from datanets.receipts import struct_hash

    r = _receipt(model_id="42")
    r = InferenceReceipt.from_dict({**r.to_dict(), "attribution": {"9": 2500, "3": 7500}})
    chain = r.to_chain_receipt(b"\x01" * 20, b"\x02" * 20)
    assert chain.model_id == 42 and chain.fee == r.fee
    assert (chain.input_tokens, chain.output_tokens) == (1200, 300)
    assert chain.contribution_ids == (3, 9) and chain.weights == (7500, 2500)
    assert chain.nonce == int(r.receipt_id, 16)
    assert len(struct_hash(chain)) == 32
    with pytest.raises(ValueError):
        _receipt(model_id="my-adapter").to_chain_receipt(b"\x01" * 20, b"\x02" * 20)
