"""The transaction pool: validated transactions waiting for a block.

Per sender, transactions are kept by nonce. Those contiguous from the sender's account nonce
are *pending* (ready for the next block); those after a gap are *queued* until the gap fills.
A transaction with the nonce of one already held replaces it only if it raises both fee caps
by at least `price_bump_percent`. Rejections carry geth's messages, so tools that match on
them (ethers, Hardhat, Foundry) behave as they do against geth.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import rlp
from eth.abc import SignedTransactionAPI, TransactionBuilderAPI
from eth.exceptions import PyEVMError
from eth_utils import ValidationError

BLOB_TX_TYPE = 3


class TxRejected(ValueError):
    """A transaction the pool refuses; `str(exc)` is the geth-style reason."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed  # the bytes were not a transaction at all


@dataclass(frozen=True)
class TxPoolConfig:
    # geth allows 128 KiB; batched attribution settlements (1,000 receipts ~ 640 KB of
    # calldata, ~23M gas) need more, and gas still bounds what a block holds.
    max_tx_bytes: int = 1024 * 1024
    max_transactions: int = 20_000  # pending + queued, all senders
    max_per_sender: int = 1_000
    price_bump_percent: int = 10
    min_priority_fee: int = 0  # the devnet accepts zero-tip transactions


@dataclass(frozen=True)
class AccountView:
    nonce: int
    balance: int


@dataclass
class _Entry:
    tx: SignedTransactionAPI
    sender: bytes
    arrival: int


@dataclass
class _SenderTxs:
    by_nonce: dict[int, _Entry] = field(default_factory=dict)


class TxPool:
    """See the module docstring. `account_reader` reads nonce and balance at the head."""

    def __init__(
        self,
        chain_id: int,
        tx_builder: type[TransactionBuilderAPI],
        account_reader: Callable[[bytes], AccountView],
        config: TxPoolConfig | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.config = config or TxPoolConfig()
        self._builder = tx_builder
        self._read_account = account_reader
        self._by_hash: dict[bytes, _Entry] = {}
        self._senders: dict[bytes, _SenderTxs] = {}
        self._arrivals = itertools.count()
        self.base_fee = 0  # of the next block; the producer updates it
        self.block_gas_limit = 30_000_000
        self._listeners: list[Callable[[SignedTransactionAPI], None]] = []

    # -- admission ---------------------------------------------------------------------
    def decode(self, raw: bytes) -> SignedTransactionAPI:
        """Decode raw transaction bytes (legacy RLP or EIP-2718 typed)."""
        if len(raw) > self.config.max_tx_bytes:
            raise TxRejected("oversized data")
        if not raw:
            raise TxRejected("invalid transaction: empty", malformed=True)
        try:
            return self._builder.decode(raw)
        except (rlp.exceptions.RLPException, PyEVMError, ValidationError, ValueError,
                TypeError, IndexError, KeyError) as exc:
            raise TxRejected(f"invalid transaction encoding: {exc}", malformed=True) from exc

    def add_raw(self, raw: bytes) -> SignedTransactionAPI:
        tx = self.decode(raw)
        self.add(tx)
        return tx

    def add(self, tx: SignedTransactionAPI) -> None:
        """Validate and admit `tx`, or raise `TxRejected`."""
        if tx.hash in self._by_hash:
            raise TxRejected("already known")
        sender = self._check_stateless(tx)
        account = self._read_account(sender)
        if tx.nonce < account.nonce:
            raise TxRejected(f"nonce too low: next nonce {account.nonce}, tx nonce {tx.nonce}")
        cost = tx.value + tx.gas * tx.max_fee_per_gas
        if account.balance < cost:
            raise TxRejected(
                f"insufficient funds for gas * price + value: address 0x{sender.hex()} "
                f"have {account.balance} want {cost}"
            )
        txs = self._senders.setdefault(sender, _SenderTxs())
        existing = txs.by_nonce.get(tx.nonce)
        if existing is not None:
            self._check_replacement(existing.tx, tx)
        else:
            if len(txs.by_nonce) >= self.config.max_per_sender:
                raise TxRejected("txpool is full: too many transactions from this account")
            if len(self._by_hash) >= self.config.max_transactions:
                raise TxRejected("txpool is full")
            if tx.nonce > account.nonce + self.config.max_per_sender:
                raise TxRejected("nonce too high")
        if existing is not None:
            del self._by_hash[existing.tx.hash]
        entry = _Entry(tx=tx, sender=sender, arrival=next(self._arrivals))
        txs.by_nonce[tx.nonce] = entry
        self._by_hash[tx.hash] = entry
        for listener in self._listeners:
            listener(tx)

    def _check_stateless(self, tx: SignedTransactionAPI) -> bytes:
        if getattr(tx, "type_id", None) == BLOB_TX_TYPE:
            raise TxRejected("transaction type not supported: blob transactions need a beacon chain")
        if tx.chain_id is None:
            raise TxRejected("only replay-protected (EIP-155) transactions allowed over RPC")
        if tx.chain_id != self.chain_id:
            raise TxRejected(f"invalid chain id: have {tx.chain_id} want {self.chain_id}")
        try:
            tx.check_signature_validity()
            sender = bytes(tx.sender)  # recovered once; py-evm caches it on the object
        except (ValidationError, ValueError, TypeError) as exc:
            raise TxRejected(f"invalid sender: {exc}") from exc
        if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise TxRejected(
                "max priority fee per gas higher than max fee per gas: "
                f"maxPriorityFeePerGas: {tx.max_priority_fee_per_gas}, "
                f"maxFeePerGas: {tx.max_fee_per_gas}"
            )
        if tx.gas > self.block_gas_limit:
            raise TxRejected("exceeds block gas limit")
        try:
            intrinsic = tx.intrinsic_gas
        except (ValidationError, ValueError) as exc:
            raise TxRejected(f"invalid transaction: {exc}") from exc
        if tx.gas < intrinsic:
            raise TxRejected(f"intrinsic gas too low: gas {tx.gas}, minimum needed {intrinsic}")
        if tx.max_fee_per_gas < self.base_fee:
            raise TxRejected(
                f"max fee per gas less than block base fee: address 0x{sender.hex()}, "
                f"maxFeePerGas: {tx.max_fee_per_gas}, baseFee: {self.base_fee}"
            )
        if tx.max_priority_fee_per_gas < self.config.min_priority_fee:
            raise TxRejected("transaction underpriced")
        return sender

    def _check_replacement(self, old: SignedTransactionAPI, new: SignedTransactionAPI) -> None:
        bump = 100 + self.config.price_bump_percent
        if (
            new.max_fee_per_gas * 100 < old.max_fee_per_gas * bump
            or new.max_priority_fee_per_gas * 100 < old.max_priority_fee_per_gas * bump
        ):
            raise TxRejected("replacement transaction underpriced")

    def subscribe(self, listener: Callable[[SignedTransactionAPI], None]) -> None:
        """Call `listener(tx)` for every admitted transaction (newPendingTransactions)."""
        self._listeners.append(listener)

    # -- queries -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        entry = self._by_hash.get(tx_hash)
        return None if entry is None else entry.tx

    def _ready_nonces(self, sender: bytes) -> list[int]:
        txs = self._senders.get(sender)
        if not txs:
            return []
        nonce = self._read_account(sender).nonce
        ready = []
        while nonce in txs.by_nonce:
            ready.append(nonce)
            nonce += 1
        return ready

    def next_nonce(self, sender: bytes) -> int:
        """The nonce after the sender's last pending transaction (eth_getTransactionCount pending)."""
        ready = self._ready_nonces(sender)
        return ready[-1] + 1 if ready else self._read_account(sender).nonce

    def counts(self) -> tuple[int, int]:
        """(pending, queued) transaction counts."""
        pending = sum(len(self._ready_nonces(sender)) for sender in self._senders)
        return pending, len(self._by_hash) - pending

    def pending_transactions(self) -> list[SignedTransactionAPI]:
        return [
            self._senders[sender].by_nonce[n].tx
            for sender in self._senders
            for n in self._ready_nonces(sender)
        ]

    def has_pending(self) -> bool:
        return any(self._ready_nonces(sender)[:1] for sender in self._senders)

    # -- block building ------------------------------------------------------------------
    def select(self, max_gas: int, max_count: int = 10_000) -> list[SignedTransactionAPI]:
        """Pending transactions for the next block: best tip first, nonce order per sender."""
        heads: list[tuple[int, int, bytes, int]] = []
        runs: dict[bytes, list[int]] = {}
        for sender in self._senders:
            ready = self._ready_nonces(sender)
            if ready:
                runs[sender] = ready
                entry = self._senders[sender].by_nonce[ready[0]]
                heapq.heappush(heads, (-self._tip(entry.tx), entry.arrival, sender, 0))
        chosen: list[SignedTransactionAPI] = []
        gas = 0
        while heads and len(chosen) < max_count:
            _, _, sender, position = heapq.heappop(heads)
            tx = self._senders[sender].by_nonce[runs[sender][position]].tx
            if gas + tx.gas > max_gas:
                continue  # this sender's later nonces cannot go before this one
            chosen.append(tx)
            gas += tx.gas
            if position + 1 < len(runs[sender]):
                entry = self._senders[sender].by_nonce[runs[sender][position + 1]]
                heapq.heappush(heads, (-self._tip(entry.tx), entry.arrival, sender, position + 1))
        return chosen

    def _tip(self, tx: SignedTransactionAPI) -> int:
        return min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - self.base_fee)

    def remove_stale(self, senders: Iterable[bytes]) -> None:
        """Drop transactions of `senders` whose nonce the chain has passed (after a block)."""
        for sender in set(senders):
            txs = self._senders.get(sender)
            if txs is None:
                continue
            nonce = self._read_account(sender).nonce
            for n in [n for n in txs.by_nonce if n < nonce]:
                entry = txs.by_nonce.pop(n)
                self._by_hash.pop(entry.tx.hash, None)
            if not txs.by_nonce:
                del self._senders[sender]

    def drop(self, tx_hash: bytes) -> None:
        """Remove one transaction (it can never be included)."""
        entry = self._by_hash.pop(tx_hash, None)
        if entry is None:
            return
        txs = self._senders[entry.sender]
        txs.by_nonce.pop(entry.tx.nonce, None)
        if not txs.by_nonce:
            del self._senders[entry.sender]
