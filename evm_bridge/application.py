"""The EVM chain as a consensus application (`consensus.abc.ApplicationAPI`).

Blocks are Ethereum blocks; the value consensus votes on is the header hash. A proposer builds
its block from the node's mempool (`prepare_proposal`). Every other validator checks a proposal
by rebuilding it: the same parent, timestamp, fee recipient, extra data and transactions must
give the same header hash (`process_proposal`), which proves every transaction valid and every
root right. The block the rebuild produced is kept, so `finalize_block` after a decision
costs nothing; `commit` writes it in one atomic batch. Execution runs in slices that yield to
the event loop, so RPC and consensus timers keep running while a large block executes.

Evidence: the block's extra data is the keccak hash of the evidence list it carries
(`consensus.types.evidence_hash`), so the voted-on hash binds it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

import rlp
import trio
from eth.abc import BlockAPI, SignedTransactionAPI

from consensus.abc import (
    AppInfo,
    ApplicationAPI,
    CheckTxResult,
    FinalizeBlockRequest,
    FinalizeBlockResult,
    PrepareProposalRequest,
    ProcessProposalRequest,
    ProposedBlock,
    QueryResult,
)
from consensus.types import DuplicateVoteEvidence, Validator, evidence_hash
from evm_bridge.builder import BuiltBlock
from evm_bridge.ledger import Ledger
from evm_bridge.vm import OpenLedgerVM

log = logging.getLogger(__name__)
SLICE = 20  # transactions between two event-loop checkpoints (~15 ms of transfers)
MAX_BLOCK_TXS = 5_000


class TransactionSource(Protocol):
    """Where proposals take their transactions from (the node's pool)."""

    def select(self, max_gas: int, max_count: int = ...) -> list[SignedTransactionAPI]: ...

    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        """The pooled transaction with this hash (its sender already recovered), if any."""


def decode_block(data: bytes) -> BlockAPI:
    """An Ethereum block from its RLP encoding (ValueError if it is not one)."""
    try:
        block: BlockAPI = rlp.decode(data, sedes=OpenLedgerVM.get_block_class())
    except Exception as exc:  # any malformed input from a peer
        raise ValueError(f"not a block: {exc}") from exc
    return block


def extra_data_for(evidence: tuple[DuplicateVoteEvidence, ...]) -> bytes:
    return evidence_hash(evidence) if evidence else b""


class EvmApplication(ApplicationAPI):
    """See the module docstring."""

    def __init__(
        self,
        ledger: Ledger,
        mempool: TransactionSource,
        on_commit: Callable[[BuiltBlock], None] = lambda built: None,
    ) -> None:
        self.ledger = ledger
        self.mempool = mempool
        self.on_commit = on_commit
        self._candidates: dict[bytes, BuiltBlock] = {}  # by block hash
        self._finalized: BuiltBlock | None = None
        # Double-sign evidence handed over by finalize_block (the latest 1,000). There is
        # no staking module yet to slash from, so it is kept here and logged.
        self.evidence_seen: deque[DuplicateVoteEvidence] = deque(maxlen=1000)

    # -- ApplicationAPI ----------------------------------------------------------------------
    async def info(self) -> AppInfo:
        head = self.ledger.head
        validators = tuple(
            Validator(address=v.address, voting_power=v.power)
            for v in self.ledger.genesis.validators
        )
        return AppInfo(height=head.block_number, last_block_hash=bytes(head.hash),
                       validators=validators)

    async def check_tx(self, tx: bytes) -> CheckTxResult:
        try:
            decoded = OpenLedgerVM.get_transaction_builder().decode(tx)
            decoded.check_signature_validity()
            if decoded.chain_id != self.ledger.chain_id:
                return CheckTxResult(1, "invalid chain id")
        except Exception as exc:  # untrusted bytes
            return CheckTxResult(1, f"invalid transaction: {exc}")
        return CheckTxResult()

    async def prepare_proposal(self, request: PrepareProposalRequest) -> ProposedBlock:
        txs = self.mempool.select(self.ledger.head.gas_limit, MAX_BLOCK_TXS)
        built = await self._build(
            txs, request.timestamp, request.proposer, extra_data_for(request.evidence)
        )
        encoded = rlp.encode(built.block)
        while len(encoded) > request.max_block_bytes and built.block.transactions:
            # Rare: shed transactions until the block fits the consensus size limit.
            keep = len(built.block.transactions) * 3 // 4
            built = await self._build(list(built.block.transactions[:keep]), request.timestamp,
                                      request.proposer, extra_data_for(request.evidence))
            encoded = rlp.encode(built.block)
        block_hash = bytes(built.block.hash)
        self._candidates[block_hash] = built
        return ProposedBlock(block=encoded, block_hash=block_hash)

    async def process_proposal(self, request: ProcessProposalRequest) -> bool:
        if request.block_hash in self._candidates:
            return True
        try:
            built = await self._rebuild(request.block, request.block_hash, request.evidence)
        except ValueError as exc:
            log.info("rejecting proposal at height %d: %s", request.height, exc)
            return False
        self._candidates[request.block_hash] = built
        return True

    async def finalize_block(self, request: FinalizeBlockRequest) -> FinalizeBlockResult:
        built = self._candidates.get(request.block_hash)
        if built is None:  # decided without our having checked it (sync, replay)
            built = await self._rebuild(request.block, request.block_hash, request.evidence)
        self._finalized = built
        for evidence in request.evidence:
            log.warning("block %d carries evidence of double signing by 0x%s at height %d",
                        request.height, evidence.validator.hex(), evidence.height)
        self.evidence_seen.extend(request.evidence)
        return FinalizeBlockResult(app_hash=bytes(built.block.header.state_root))

    async def commit(self) -> None:
        built = self._finalized
        if built is None:
            raise RuntimeError("commit without finalize_block")
        self._finalized = None
        self._candidates.clear()
        if built.block.header.parent_hash != self.ledger.head.hash:
            # Candidates built on a parent we have since moved past: rebuild on the head.
            raise RuntimeError("finalized block does not extend the committed head")
        self.ledger.commit(built)
        self.on_commit(built)

    async def query(self, path: str, data: bytes) -> QueryResult:
        if path == "head":
            head = self.ledger.head
            return QueryResult(value=rlp.encode([head.block_number, head.hash]))
        return QueryResult(code=1, log=f"unknown query path {path!r}")

    # -- building ----------------------------------------------------------------------------
    async def _build(self, txs: list[SignedTransactionAPI], timestamp: int, coinbase: bytes,
                     extra_data: bytes) -> BuiltBlock:
        # Candidates that lose leave trie nodes in the write buffer: unreferenced, harmless,
        # and never discarded here (a candidate decided later still needs its nodes).
        job = self.ledger.start_block(txs, timestamp, coinbase=coinbase, extra_data=extra_data)
        while not job.step(SLICE):
            await trio.sleep(0)
        return job.finish()

    async def _rebuild(self, data: bytes, block_hash: bytes,
                       evidence: tuple[DuplicateVoteEvidence, ...]) -> BuiltBlock:
        block = decode_block(data)
        head = self.ledger.head
        header = block.header
        if bytes(block.hash) != block_hash:
            raise ValueError("block hash does not match the proposal")
        if header.parent_hash != head.hash or header.block_number != head.block_number + 1:
            raise ValueError("block does not extend our head")
        # The fee recipient is the builder's choice (as on Ethereum), and a block decided in a
        # later round may have been built by an earlier round's proposer: not checked here.
        if bytes(header.extra_data) != extra_data_for(evidence):
            raise ValueError("extra data does not commit to the evidence")
        if header.timestamp <= head.timestamp:
            raise ValueError("timestamp does not move forward")
        # Transactions we already hold come from the pool with their senders recovered:
        # signature recovery is a large share of executing a block of transfers.
        txs = [self.mempool.get(tx.hash) or tx for tx in block.transactions]
        built = await self._build(txs, header.timestamp, bytes(header.coinbase),
                                  bytes(header.extra_data))
        if built.skipped:
            raise ValueError(f"invalid transaction in block: {built.skipped[0][1]}")
        if bytes(built.block.hash) != block_hash:
            raise ValueError("re-execution gives another block (state, receipts or gas differ)")
        return built
