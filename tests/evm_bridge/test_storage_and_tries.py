"""LevelDB store, the per-block write buffer, and the one-pass trie builder."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth.db.trie import make_trie_root_and_nodes
from eth_account import Account

from evm_bridge.db import BufferedDB, LevelDB, StoreLockedError
from evm_bridge.ledger import GenesisMismatchError, Ledger
from evm_bridge.tries import fast_trie_root_and_nodes
from genesis.presets import dev_accounts, devnet_genesis


def test_leveldb_batches_are_atomic_and_locked(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    db[b"a"] = b"1"
    with pytest.raises(RuntimeError):
        with db.atomic_batch() as batch:
            batch[b"b"] = b"2"
            del batch[b"a"]
            raise RuntimeError("abort")
    assert db[b"a"] == b"1" and b"b" not in db
    with db.atomic_batch() as batch:
        batch[b"b"] = b"2"
        del batch[b"a"]
    assert b"a" not in db and db[b"b"] == b"2"
    with pytest.raises(StoreLockedError):
        LevelDB(tmp_path / "db")
    db.close()


def test_buffered_db_flushes_or_discards_everything(tmp_path: Path) -> None:
    backing = LevelDB(tmp_path / "db")
    backing[b"old"] = b"x"
    buffered = BufferedDB(backing)
    buffered[b"new"] = b"y"
    del buffered[b"old"]
    assert buffered[b"new"] == b"y" and b"old" not in buffered
    assert backing[b"old"] == b"x" and b"new" not in backing  # nothing on disk yet
    buffered.discard()
    assert buffered[b"old"] == b"x"
    buffered[b"new"] = b"y"
    del buffered[b"old"]
    buffered.flush()
    assert backing[b"new"] == b"y" and b"old" not in backing
    backing.close()


class _Item:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def encode(self) -> bytes:
        return self.payload


@pytest.mark.parametrize("count", [0, 1, 63, 64, 65, 127, 128, 129, 300, 1000])
def test_fast_tries_match_py_evm(count: int) -> None:
    items = [_Item(bytes([i % 251]) * (1 + i % 40)) for i in range(count)]
    expected_root, expected_nodes = make_trie_root_and_nodes(tuple(items))
    root, nodes = fast_trie_root_and_nodes(items)
    assert root == expected_root
    assert {bytes(k): v for k, v in expected_nodes.items()} == nodes


def test_ledger_persists_and_reopens(tmp_path: Path) -> None:
    genesis = devnet_genesis(accounts=2, timestamp=1_700_000_000)
    ledger = Ledger.open(tmp_path / "chain", genesis)
    sender, recipient = dev_accounts(2)
    builder = ledger.chain.get_vm().get_transaction_builder()
    txs = [
        builder.decode(bytes(Account.sign_transaction(
            {"to": recipient.address, "value": 7, "gas": 21000, "nonce": n,
             "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 1, "chainId": genesis.chain_id},
            sender.private_key).raw_transaction))
        for n in (0, 1, 5)  # nonce 5 leaves a gap: skipped, not fatal
    ]
    built = ledger.start_block(txs, int(time.time())).finish()
    assert len(built.block.transactions) == 2 and len(built.skipped) == 1
    ledger.commit(built)
    head = ledger.head
    ledger.close()

    reopened = Ledger.open(tmp_path / "chain", genesis)
    assert reopened.head == head
    assert reopened.receipts(reopened.block_by_number(1))[1].gas_used == 42000  # type: ignore[arg-type]
    assert reopened.transaction_location(txs[1].hash) == (1, 1)
    reopened.close()
    with pytest.raises(GenesisMismatchError):
        Ledger.open(tmp_path / "chain", devnet_genesis(accounts=3, timestamp=1))
