"""The OpenLedger VM: py-evm's Prague fork with OpenLedger's native precompiles.

OPEN is the native currency: it pays gas exactly as ether does on Ethereum (EIP-1559 base fee
burned, priority fee to the block's fee recipient). Proof of stake means no block reward from
the EVM itself (Paris rules); staking rewards are the staking module's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rlp
from eth._utils.db import get_parent_header
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI, WithdrawalAPI
from eth.chains.base import Chain
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.constants import DEPOSIT_CONTRACT_ADDRESS, DEPOSIT_REQUEST_TYPE
from eth.vm.forks.prague.state import PragueState
from eth_hash.auto import keccak
from eth_typing import Address, BlockNumber
from eth_utils import ValidationError

from evm_bridge.precompiles import NATIVE_PRECOMPILES
from evm_bridge.tries import fast_trie_root_and_nodes


class OpenLedgerComputation(PragueComputation):
    """Prague's computation with the native precompiles (0x...0900 and up) added."""

    _precompiles = {**PragueComputation._precompiles, **NATIVE_PRECOMPILES}


class OpenLedgerState(PragueState):
    computation_class = OpenLedgerComputation


class OpenLedgerVM(PragueVM):
    """The only fork of the chain, from block 0."""

    fork = "openledger-prague"
    _state_class = OpenLedgerState

    # Same rules as py-evm's, with the one-pass trie builder for transactions and receipts
    # (py-evm's per-item insertion dominates the cost of large blocks).
    def set_block_transactions_and_withdrawals(
        self,
        base_block: BlockAPI,
        new_header: BlockHeaderAPI,
        transactions: Sequence[SignedTransactionAPI],
        receipts: Sequence[ReceiptAPI],
        withdrawals: Sequence[WithdrawalAPI] | None = None,
    ) -> BlockAPI:
        if withdrawals:
            raise ValidationError("OpenLedger blocks carry no beacon-chain withdrawals")
        tx_root, tx_nodes = fast_trie_root_and_nodes(transactions)
        receipt_root, receipt_nodes = fast_trie_root_and_nodes(receipts)
        self.chaindb.persist_trie_data_dict(tx_nodes)  # type: ignore[arg-type]
        self.chaindb.persist_trie_data_dict(receipt_nodes)  # type: ignore[arg-type]
        header = new_header.copy(transaction_root=tx_root, receipt_root=receipt_root)
        return base_block.copy(header=header, transactions=tuple(transactions))

    def process_deposit_request_data(self, block: BlockAPI) -> None:
        # EIP-6110 deposit requests come from logs of the beacon deposit contract, which this
        # chain does not have: the (empty) request is known without re-reading every receipt.
        if self.state.get_code(Address(DEPOSIT_CONTRACT_ADDRESS)):
            super().process_deposit_request_data(block)
        else:
            block.block_requests.append(DEPOSIT_REQUEST_TYPE)

    def validate_block(self, block: BlockAPI) -> None:
        if not isinstance(block, self.get_block_class()):
            raise ValidationError(f"{self!r} cannot validate a block of type {block!r}")
        if block.is_genesis:
            return
        self.validate_header(block.header, get_parent_header(block.header, self.chaindb))
        tx_root, _ = fast_trie_root_and_nodes(block.transactions)
        if tx_root != block.header.transaction_root:
            raise ValidationError("block transaction_root does not match its transactions")
        if block.uncles or keccak(rlp.encode(block.uncles)) != block.header.uncles_hash:
            raise ValidationError("OpenLedger blocks have no uncles")
        if not self.chaindb.exists(block.header.state_root):
            if self.state.make_state_root() != block.header.state_root:
                raise ValidationError("block state_root does not match the executed state")


# The one place that says which VM runs from which block (py-evm's VM_CONFIGURATION habit).
VM_CONFIGURATION: tuple[tuple[BlockNumber, type[PragueVM]], ...] = (
    (BlockNumber(0), OpenLedgerVM),
)


class OpenLedgerChain(Chain):
    """A py-evm chain running `VM_CONFIGURATION`; `chain_id` is set per network."""

    vm_configuration = VM_CONFIGURATION


def chain_class_for(chain_id: int) -> type[OpenLedgerChain]:
    """A chain class configured with `chain_id` (py-evm keeps chain id on the class)."""
    configured: Any = OpenLedgerChain.configure(
        __name__="OpenLedgerChain", chain_id=chain_id
    )
    return configured  # type: ignore[no-any-return]
