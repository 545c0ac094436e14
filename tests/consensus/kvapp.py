"""A toy key-value application (test double for the EVM) that proves consensus on its own.

Transactions are `key=value` bytes; `val:<address hex>=<power>` changes the validator set.
A block is RLP [height, timestamp, proposer, parent hash, txs, evidence hash] and its hash is
keccak of those bytes, so process_proposal can re-derive and check it, like the EVM application
checks an Ethereum header hash. Committed state survives a consensus restart (the object is
kept), as a real application's database would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import rlp
import trio
from eth_hash.auto import keccak

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
from consensus.types import DuplicateVoteEvidence, Validator, ValidatorUpdate, evidence_hash

GENESIS_HASH = b"\x00" * 32


@dataclass
class Finalized:
    height: int
    block_hash: bytes
    txs: list[bytes]
    evidence: tuple[DuplicateVoteEvidence, ...]
    certificate_round: int


@dataclass
class KVApp(ApplicationAPI):
    genesis_validators: tuple[Validator, ...]
    height: int = 0
    last_hash: bytes = GENESIS_HASH
    state: dict[bytes, bytes] = field(default_factory=dict)
    mempool: list[bytes] = field(default_factory=list)
    finalized: list[Finalized] = field(default_factory=list)
    slashed: list[bytes] = field(default_factory=list)
    process_calls: int = 0
    reject_all: bool = False
    app_hash: bytes = b"\x00" * 32
    _staged: tuple[int, bytes, dict[bytes, bytes], Finalized, bytes] | None = None

    def submit(self, tx: bytes) -> None:
        if not self._tx_ok(tx):
            raise ValueError(f"malformed tx {tx!r}")
        self.mempool.append(tx)

    @staticmethod
    def _tx_ok(tx: bytes) -> bool:
        return b"=" in tx and len(tx) <= 1024

    @staticmethod
    def encode_block(
        height: int,
        timestamp: int,
        proposer: bytes,
        parent: bytes,
        txs: list[bytes],
        evidence: tuple[DuplicateVoteEvidence, ...],
    ) -> bytes:
        return bytes(
            rlp.encode([height, timestamp, proposer, parent, txs, evidence_hash(evidence)])
        )

    async def info(self) -> AppInfo:
        await trio.lowlevel.checkpoint()
        return AppInfo(self.height, self.last_hash, self.genesis_validators)

    async def check_tx(self, tx: bytes) -> CheckTxResult:
        await trio.lowlevel.checkpoint()
        return CheckTxResult() if self._tx_ok(tx) else CheckTxResult(1, "expected key=value")

    async def prepare_proposal(self, request: PrepareProposalRequest) -> ProposedBlock:
        await trio.lowlevel.checkpoint()
        txs = list(self.mempool[:100])
        block = self.encode_block(
            request.height,
            request.timestamp,
            request.proposer,
            self.last_hash,
            txs,
            request.evidence,
        )
        return ProposedBlock(block, bytes(keccak(block)))

    async def process_proposal(self, request: ProcessProposalRequest) -> bool:
        await trio.lowlevel.checkpoint()
        self.process_calls += 1
        if self.reject_all or bytes(keccak(request.block)) != request.block_hash:
            return False
        try:
            f = rlp.decode(request.block)
            height = int.from_bytes(f[0], "big")
            parent, txs, ev_hash = f[3], f[4], f[5]
        except Exception:
            return False
        return (
            height == request.height == self.height + 1
            and parent == self.last_hash
            and ev_hash == evidence_hash(request.evidence)
            and all(isinstance(t, bytes) and self._tx_ok(t) for t in txs)
        )

    async def finalize_block(self, request: FinalizeBlockRequest) -> FinalizeBlockResult:
        await trio.lowlevel.checkpoint()
        if request.height != self.height + 1:
            raise ValueError(f"finalize height {request.height}, app at {self.height}")
        if bytes(keccak(request.block)) != request.block_hash:
            raise ValueError("block does not match its hash")
        txs = list(rlp.decode(request.block)[4])
        changes: dict[bytes, bytes] = {}
        updates: list[ValidatorUpdate] = []
        for tx in txs:
            key, _, value = tx.partition(b"=")
            if key.startswith(b"val:"):
                updates.append(ValidatorUpdate(bytes.fromhex(key[4:].decode()), int(value)))
            changes[key] = value
        for ev in request.evidence:
            changes[b"slashed:" + ev.validator.hex().encode()] = str(ev.height).encode()
        record = Finalized(
            request.height, request.block_hash, txs, request.evidence, request.certificate.round
        )
        # A hash chain over the applied changes: cheap, and equal on every honest node.
        app_hash = bytes(
            keccak(self.app_hash + rlp.encode(sorted([k, v] for k, v in changes.items())))
        )
        self._staged = (request.height, request.block_hash, changes, record, app_hash)
        return FinalizeBlockResult(app_hash=app_hash, validator_updates=tuple(updates))

    async def commit(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._staged is None:
            raise RuntimeError("commit without finalize_block")
        self.height, self.last_hash, changes, record, self.app_hash = self._staged
        self._staged = None
        self.state.update(changes)
        self.finalized.append(record)
        self.slashed.extend(ev.validator for ev in record.evidence)
        done = set(record.txs)
        if done:
            self.mempool = [t for t in self.mempool if t not in done]

    async def query(self, path: str, data: bytes) -> QueryResult:
        await trio.lowlevel.checkpoint()
        if path != "key":
            return QueryResult(1, log=f"unknown path {path}")
        value = self.state.get(data)
        return QueryResult(0 if value is not None else 2, value or b"")
