"""Block building: execute a batch of transactions into one block, in resumable slices.

Never `MiningChain.apply_transaction` one by one (it rebuilds the block each time: quadratic).
A `BlockBuildJob` applies transactions to one VM state in order, skipping those that turn out
invalid (nonce gap, balance, gas limit) instead of failing the block, and runs the Prague
system hooks (`block_preprocessing` / `block_postprocessing`) so its blocks re-import with
`import_block`. `step(n)` applies at most n transactions and returns, so an event loop can
serve RPC between slices of a large block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
    VirtualMachineAPI,
)
from eth_utils import ValidationError


@dataclass
class BuiltBlock:
    """A sealed block with its receipts, ready to persist (not yet on the canonical chain)."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    computations: tuple[ComputationAPI, ...]
    # Transactions left out and why (they stay in the pool or are dropped by its owner).
    skipped: list[tuple[SignedTransactionAPI, str]] = field(default_factory=list)


class BlockBuildJob:
    """Builds one block on top of `vm`'s header; see the module docstring."""

    def __init__(self, vm: Any, transactions: Sequence[SignedTransactionAPI]):
        self._vm: VirtualMachineAPI = vm  # an OpenLedgerVM (Prague hooks)
        self._pending = list(transactions)
        self._cursor = 0
        self._included: list[SignedTransactionAPI] = []
        self._receipts: list[ReceiptAPI] = []
        self._computations: list[ComputationAPI] = []
        self._skipped: list[tuple[SignedTransactionAPI, str]] = []
        self._header: BlockHeaderAPI = vm.get_header().copy(gas_used=0)
        vm.block_preprocessing(vm.get_block())  # type: ignore[attr-defined]

    @property
    def done(self) -> bool:
        return self._cursor >= len(self._pending)

    @property
    def included_count(self) -> int:
        return len(self._included)

    def step(self, limit: int) -> bool:
        """Apply up to `limit` more transactions; True once every one has been considered."""
        vm = self._vm
        end = min(len(self._pending), self._cursor + limit)
        while self._cursor < end:
            tx = self._pending[self._cursor]
            self._cursor += 1
            if self._header.gas_used + tx.gas > self._header.gas_limit:
                self._skipped.append((tx, "block gas limit reached"))
                continue
            try:
                receipt, computation = vm.apply_transaction(self._header, tx)
            except ValidationError as exc:
                self._skipped.append((tx, str(exc)))
                continue
            self._header = vm.add_receipt_to_header(self._header, receipt)
            self._header = vm.increment_blob_gas_used(self._header, tx)
            self._included.append(tx)
            self._receipts.append(receipt)
            self._computations.append(computation)
        return self.done

    def finish(self) -> BuiltBlock:
        """Seal the block: tries, Prague system work, state root. Applies what is left first."""
        self.step(len(self._pending))
        vm = self._vm
        block = vm.set_block_transactions_and_withdrawals(
            vm.get_block(), self._header, self._included, self._receipts
        )
        block = vm.block_postprocessing(block)  # type: ignore[attr-defined]
        sealed = vm.mine_block(block).block
        return BuiltBlock(
            block=sealed,
            receipts=tuple(self._receipts),
            computations=tuple(self._computations),
            skipped=self._skipped,
        )
