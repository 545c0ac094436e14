"""Genesis schema: round trips, geth-style import, and refusal of malformed input."""

from __future__ import annotations

import pytest

from genesis.presets import DEVNET_CHAIN_ID, dev_accounts, devnet_genesis
from genesis.schema import Genesis, GenesisError


def test_devnet_round_trip_and_accounts() -> None:
    genesis = devnet_genesis(accounts=3, timestamp=123)
    assert Genesis.from_json(genesis.to_json()) == genesis
    assert genesis.chain_id == DEVNET_CHAIN_ID
    assert dev_accounts(1)[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert len(genesis.alloc) == 3


def test_geth_genesis_import() -> None:
    geth = {
        "config": {"chainId": 12345, "londonBlock": 0},
        "gasLimit": "0x1c9c380",
        "timestamp": "0x10",
        "extraData": "0x",
        "baseFeePerGas": "0x7",
        "alloc": {
            "f39Fd6e51aad88F6F4ce6aB8827279cffFb92266": {"balance": "0xde0b6b3a7640000"},
            "0x0000000000000000000000000000000000000abc": {
                "balance": "0", "code": "0x6000", "storage": {"0x01": "0x02"}, "nonce": "0x1"},
        },
    }
    genesis = Genesis.from_json(geth)
    assert genesis.chain_id == 12345 and genesis.gas_limit == 30_000_000
    assert genesis.timestamp == 16 and genesis.base_fee_per_gas == 7
    contract = genesis.alloc[bytes.fromhex("0000000000000000000000000000000000000abc")]
    assert contract.code == b"\x60\x00" and contract.storage == {1: 2} and contract.nonce == 1


@pytest.mark.parametrize("bad", [
    {"chain_id": 0},
    {"chain_id": "x"},
    {"chain_id": 5, "alloc": {"0x1234": {"balance": "1"}}},
    {"chain_id": 5, "alloc": {"0x" + "11" * 20: {"balance": "-1"}}},
    {"config": {}},
    [],
])
def test_malformed_genesis_is_refused(bad: object) -> None:
    with pytest.raises(GenesisError):
        Genesis.from_json(bad)  # type: ignore[arg-type]
