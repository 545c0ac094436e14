"""The ledger: an OpenLedger chain over a key-value store, as the node uses it.

It owns the py-evm chain, its database (a `BufferedDB` flushed once per block, so every block
reaches disk atomically) and the genesis. The node builds blocks through `start_block` /
`commit`, imports other validators' blocks through `import_block`, and reads headers, blocks,
receipts and state here. One trio task at a time may touch a ledger.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth.abc import (
    AtomicDatabaseAPI,
    BlockAPI,
    BlockHeaderAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    StateAPI,
)
from eth.exceptions import BlockNotFound, HeaderNotFound, TransactionNotFound
from eth.vm.forks.prague.constants import HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CONTRACT_CODE

from evm_bridge.builder import BlockBuildJob, BuiltBlock
from evm_bridge.db import BufferedDB, LevelDB, memory_db
from evm_bridge.precompiles import genesis_accounts
from evm_bridge.vm import OpenLedgerChain, OpenLedgerVM, chain_class_for
from genesis.schema import Genesis

_GENESIS_KEY = b"openledger:genesis-json-hash"


class GenesisMismatchError(RuntimeError):
    """The data directory holds a chain with a different genesis."""


def genesis_state(genesis: Genesis) -> dict[bytes, dict[str, Any]]:
    """py-evm's genesis state dict: the allocations, precompile accounts, system contracts."""
    state: dict[bytes, dict[str, Any]] = {
        address: {"nonce": 1, "balance": 0, "code": HISTORY_STORAGE_CONTRACT_CODE, "storage": {}}
        for address in (HISTORY_STORAGE_ADDRESS,)
    }
    state.update(genesis_accounts(genesis.params))
    for address, account in genesis.alloc.items():
        state[address] = {
            "nonce": account.nonce,
            "balance": account.balance,
            "code": account.code,
            "storage": dict(account.storage),
        }
    return state


def genesis_header_params(genesis: Genesis) -> dict[str, Any]:
    return {
        "difficulty": 0,
        "gas_limit": genesis.gas_limit,
        "timestamp": genesis.timestamp,
        "extra_data": genesis.extra_data,
        "coinbase": genesis.coinbase,
        "base_fee_per_gas": genesis.base_fee_per_gas,
        "nonce": b"\x00" * 8,
    }


class Ledger:
    """An OpenLedger chain on a store; see the module docstring."""

    def __init__(self, backing: AtomicDatabaseAPI, genesis: Genesis) -> None:
        self.genesis = genesis
        self.store = BufferedDB(backing)
        self._backing = backing
        chain_cls = chain_class_for(genesis.chain_id)
        fingerprint = _genesis_fingerprint(genesis)
        if self.store.exists(_GENESIS_KEY):
            if self.store[_GENESIS_KEY] != fingerprint:
                if isinstance(backing, LevelDB):
                    backing.close()
                raise GenesisMismatchError(
                    "this data directory holds a chain with another genesis; "
                    "use a fresh directory (or --fresh to wipe it)"
                )
            self.chain: OpenLedgerChain = chain_cls(self.store)
        else:
            self.chain = chain_cls.from_genesis(  # type: ignore[assignment]
                self.store,
                genesis_header_params(genesis),
                genesis_state(genesis),  # type: ignore[arg-type]
            )
            self.store[_GENESIS_KEY] = fingerprint
            self.store.flush()
        self.chain_id = genesis.chain_id
        self.genesis_hash = self.chain.get_canonical_block_hash(0)  # type: ignore[arg-type]
        self._head = self.chain.get_canonical_head()

    @classmethod
    def open(cls, path: str | Path | None, genesis: Genesis) -> Ledger:
        """A ledger on LevelDB at `path`, or in memory when `path` is None."""
        backing: AtomicDatabaseAPI = memory_db() if path is None else LevelDB(path)
        return cls(backing, genesis)

    def close(self) -> None:
        self.store.discard()
        if isinstance(self._backing, LevelDB):
            self._backing.close()

    # -- head and building -------------------------------------------------------------------
    @property
    def head(self) -> BlockHeaderAPI:
        return self._head

    def start_block(
        self,
        transactions: list[SignedTransactionAPI],
        timestamp: int,
        coinbase: bytes = b"\x00" * 20,
        extra_data: bytes = b"",
    ) -> BlockBuildJob:
        """A job that builds the next block on the head with `transactions` (in order)."""
        parent = self._head
        header = OpenLedgerVM.create_header_from_parent(
            parent,
            timestamp=max(timestamp, parent.timestamp + 1),
            coinbase=coinbase,
            gas_limit=parent.gas_limit,
            extra_data=extra_data,
        )
        return BlockBuildJob(self.chain.get_vm(header), transactions)

    def commit(self, built: BuiltBlock) -> None:
        """Make a built block canonical and write it, with its state, atomically."""
        block = built.block
        if block.header.parent_hash != self._head.hash:
            self.store.discard()
            raise ValueError("built block does not extend the current head")
        self.chain.chaindb.persist_block(block)
        self.store.flush()
        self._head = block.header

    def import_block(self, block: BlockAPI) -> BlockAPI:
        """Execute and validate another node's block, then commit it."""
        try:
            result = self.chain.import_block(block, perform_validation=True)
        except Exception:
            self.store.discard()
            raise
        self.store.flush()
        self._head = self.chain.get_canonical_head()
        return result.imported_block

    # -- reads ---------------------------------------------------------------------------
    def header_by_number(self, number: int) -> BlockHeaderAPI | None:
        if number < 0 or number > self._head.block_number:
            return None
        try:
            return self.chain.get_canonical_block_header_by_number(number)  # type: ignore[arg-type]
        except HeaderNotFound:
            return None

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        try:
            header = self.chain.get_block_header_by_hash(block_hash)  # type: ignore[arg-type]
        except (HeaderNotFound, ValueError):
            return None
        if header.block_number > self._head.block_number:
            return None
        return header

    def block_by_header(self, header: BlockHeaderAPI) -> BlockAPI:
        return self.chain.get_block_by_header(header)

    def block_by_number(self, number: int) -> BlockAPI | None:
        header = self.header_by_number(number)
        return None if header is None else self.block_by_header(header)

    def receipts(self, block: BlockAPI) -> tuple[ReceiptAPI, ...]:
        return block.get_receipts(self.chain.chaindb)

    def transaction_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(block number, index) of a committed transaction, or None."""
        try:
            number, index = self.chain.chaindb.get_transaction_index(tx_hash)  # type: ignore[arg-type]
        except (TransactionNotFound, BlockNotFound, HeaderNotFound, KeyError):
            return None
        if number > self._head.block_number:
            return None
        return number, index

    def state_at(self, header: BlockHeaderAPI | None = None) -> StateAPI:
        """A read-only view of the state after `header` (default: the head)."""
        return self.chain.get_vm(header or self._head).state


def _genesis_fingerprint(genesis: Genesis) -> bytes:
    import json

    from eth_hash.auto import keccak

    return keccak(json.dumps(genesis.to_json(), sort_keys=True).encode())
