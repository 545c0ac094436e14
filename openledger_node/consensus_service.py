"""Consensus for a node: the same Tendermint driver for the devnet and for a network.

Wires the pieces other packages provide: the EVM chain as the consensus application
(`evm_bridge.application.EvmApplication`) and the Tendermint driver (`consensus.driver`).
On a network it adds the libp2p service (`p2p.host.P2PService`) carrying consensus messages
and transactions, and block sync: a node behind its peers downloads decided blocks with their
commit certificates and hands them to the driver, which verifies each certificate against the
validator set it knows before the application executes the block. The devnet is the case of
one validator and no peers (`SoloTransport`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import rlp
import trio
from eth.abc import SignedTransactionAPI

from consensus.abc import TransportAPI
from consensus.driver import ConsensusDriver, DriverConfig
from consensus.signer import PrivValidator
from consensus.state_machine import TimeoutConfig
from consensus.store import ConsensusDB, LevelDBStore
from consensus.types import CommitCertificate, ConsensusMessage, Decision, Proposal
from evm_bridge.application import EvmApplication
from evm_bridge.builder import BuiltBlock
from evm_bridge.ledger import Ledger
from genesis.schema import Genesis
from openledger_node.txpool import TxPool, TxRejected
from p2p.abc import SyncProviderAPI, ValidationResult
from p2p.config import P2PConfig
from p2p.consensus_transport import ConsensusTransport
from p2p.host import GossipMessage, P2PError, P2PService
from p2p.identity import load_or_create_identity
from p2p.wire import BlockWithCertificate, ChainStatus, Kind

log = logging.getLogger(__name__)
SYNC_BATCH = 64
SYNC_POLL = 1.0
# Transactions are gossiped in batches (an RLP list of raw transactions): one p2p message per
# flush instead of one per transaction, which costs far less CPU at high rates.
TX_GOSSIP_INTERVAL = 0.02
TX_GOSSIP_MAX_BYTES = 1024 * 1024 + 16 * 1024  # a whole 1 MiB transaction fits in one batch
MAX_TXS_PER_GOSSIP = 2_000


def timeouts_from_genesis(params: dict[str, Any]) -> TimeoutConfig:
    """Consensus timeouts from the genesis parameters (milliseconds there, seconds here)."""

    def seconds(key: str, default_ms: int) -> float:
        return float(params.get(f"consensus.{key}", default_ms)) / 1000

    vote = seconds("timeout_vote_ms", 1000)
    vote_delta = seconds("timeout_vote_delta_ms", 500)
    return TimeoutConfig(
        propose=seconds("timeout_propose_ms", 3000),
        propose_delta=seconds("timeout_propose_delta_ms", 500),
        prevote=vote,
        prevote_delta=vote_delta,
        precommit=vote,
        precommit_delta=vote_delta,
        commit=seconds("block_time_ms", 1000),
    )


@dataclass
class SyncProgress:
    """What `eth_syncing` and `openledger status` report."""

    syncing: bool = False
    start: int = 0
    current: int = 0
    target: int = 0
    blocks_per_second: float = 0.0


class LedgerSyncProvider(SyncProviderAPI):
    """Serves our status and our decided blocks (proposal + certificate) to peers."""

    def __init__(self, ledger: Ledger, db: ConsensusDB) -> None:
        self.ledger = ledger
        self.db = db

    async def get_status(self) -> ChainStatus:
        head = self.ledger.head
        return ChainStatus(self.ledger.chain_id, bytes(self.ledger.genesis_hash),
                           head.block_number, bytes(head.hash))

    async def get_blocks(self, start: int, count: int) -> list[BlockWithCertificate]:
        out = []
        for height in range(max(start, 1), min(start + count, self.ledger.head.block_number + 1)):
            decision = self.db.load_decision(height)
            if decision is None:
                break
            out.append(BlockWithCertificate(decision.proposal.encode(),
                                            decision.certificate.encode()))
        return out


class SoloTransport(TransportAPI):
    """The transport of a lone validator (the devnet): nobody to send to, nothing to receive."""

    async def broadcast(self, message: ConsensusMessage) -> None:
        return None

    async def receive(self) -> ConsensusMessage:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


class ConsensusService:
    """Runs the consensus driver for one node, and on a network p2p, gossip and sync.

    `p2p_config` None is the devnet: no peers, and `before_height` / `block_time` pace blocks
    (instant mode waits for transactions; interval mode pauses `block_time` after each block).
    """

    def __init__(
        self,
        home: Path,
        genesis: Genesis,
        ledger: Ledger,
        pool: TxPool,
        p2p_config: P2PConfig | None,
        validator_key: bytes | None,
        on_commit: Callable[[BuiltBlock], None],
        *,
        double_sign_for_tests: bool = False,
        before_height: Callable[[int], Awaitable[None]] | None = None,
        block_time: float | None = None,
    ) -> None:
        self.genesis = genesis
        self.ledger = ledger
        self.pool = pool
        self.store = LevelDBStore.open(home / "consensus")
        self.db = ConsensusDB(self.store)
        self.app = EvmApplication(ledger, pool, on_commit=on_commit)
        self.p2p: P2PService | None = None
        self.transport: TransportAPI = SoloTransport()
        if p2p_config is not None:
            self.p2p = P2PService(load_or_create_identity(home), p2p_config,
                                  LedgerSyncProvider(ledger, self.db))
            self.transport = ConsensusTransport(self.p2p, genesis.chain_id)
            self.p2p.set_validator(Kind.TRANSACTION, self._validate_tx)
            self._tx_inbox = self.p2p.subscribe(Kind.TRANSACTION)
        signer = None
        if validator_key is not None:
            signer = PrivValidator(validator_key, home / "priv_validator_state.json",
                                   double_sign_for_tests=double_sign_for_tests)
        self.is_validator = signer is not None
        timeouts = timeouts_from_genesis(dict(genesis.params))
        if block_time is not None:
            timeouts = replace(timeouts, commit=block_time)
        self.driver = ConsensusDriver(
            self.app, self.transport, self.db, signer,
            DriverConfig(genesis.chain_id, timeouts=timeouts, before_height=before_height),
        )
        self.progress = SyncProgress()
        self._outbox: deque[bytes] = deque()
        self._outbox_ready = trio.Event()
        self._admitting = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                if self.p2p is not None:
                    await nursery.start(self.p2p.run)
                    nursery.start_soon(self._receive_transactions)
                    nursery.start_soon(self._flush_transactions)
                await nursery.start(self.driver.run)
                if self.p2p is not None:
                    nursery.start_soon(self._sync_loop)
                task_status.started()
        finally:
            self.store.close()

    def peer_count(self) -> int:
        return 0 if self.p2p is None else self.p2p.peer_count

    def syncing(self) -> Any:
        if not self.progress.syncing:
            return False
        return {"startingBlock": hex(self.progress.start),
                "currentBlock": hex(self.ledger.head.block_number),
                "highestBlock": hex(self.progress.target)}

    # -- transactions ------------------------------------------------------------------------
    def gossip_transaction(self, tx: SignedTransactionAPI) -> None:
        """Queue a transaction the pool admitted for the next gossip batch (never blocks).

        Transactions that came in by gossip are relayed by p2p itself, so only those our own
        RPC admitted are queued (`_admitting` is set while gossip is being admitted).
        """
        if self._admitting or self.p2p is None:
            return
        self._outbox.append(tx.encode())
        self._outbox_ready.set()

    async def _flush_transactions(self) -> None:
        while True:
            await self._outbox_ready.wait()
            await trio.sleep(TX_GOSSIP_INTERVAL)
            self._outbox_ready = trio.Event()
            while self._outbox:
                batch: list[bytes] = []
                size = 0
                while self._outbox and len(batch) < MAX_TXS_PER_GOSSIP and \
                        size + len(self._outbox[0]) <= TX_GOSSIP_MAX_BYTES:
                    size += len(self._outbox[0])
                    batch.append(self._outbox.popleft())
                if not batch:  # a single transaction over the limit: the pool refuses those
                    self._outbox.popleft()
                    continue
                assert self.p2p is not None
                await self.p2p.broadcast(Kind.TRANSACTION, rlp.encode(batch))

    def _validate_tx(self, body: bytes, peer: Any) -> ValidationResult:
        """Shape only (a list of byte strings): full checks happen on admission."""
        try:
            items = rlp.decode(body)
        except rlp.exceptions.RLPException:
            return ValidationResult.REJECT
        if not isinstance(items, list) or not items or len(items) > MAX_TXS_PER_GOSSIP \
                or not all(isinstance(item, bytes) for item in items):
            return ValidationResult.REJECT
        return ValidationResult.ACCEPT

    async def _receive_transactions(self) -> None:
        async for message in self._tx_inbox:
            self._admit(message)
            await trio.sleep(0)

    def _admit(self, message: GossipMessage) -> None:
        self._admitting = True
        try:
            for raw in rlp.decode(message.data):
                try:
                    self.pool.add_raw(raw)
                except TxRejected:
                    pass  # already known, nonce passed, ...: normal for gossip
        finally:
            self._admitting = False

    # -- sync --------------------------------------------------------------------------------
    async def _sync_loop(self) -> None:
        while True:
            try:
                await self._sync_once()
            except (P2PError, ValueError) as exc:  # a peer that fails or sends garbage
                log.info("sync attempt failed: %s", exc)
            await trio.sleep(SYNC_POLL)

    async def _best_peer(self) -> tuple[Any, int] | None:
        assert self.p2p is not None
        best = None
        for peer in self.p2p.connected_peers():
            try:
                status = await self.p2p.request_status(peer)
            except P2PError:
                continue
            if status.genesis_hash != bytes(self.ledger.genesis_hash):
                continue
            if best is None or status.height > best[1]:
                best = (peer, status.height)
        return best

    async def _sync_once(self) -> None:
        best = await self._best_peer()
        ours = self.ledger.head.block_number
        # One height behind is consensus's own business (it gets the Decision by gossip).
        if best is None or best[1] <= ours + 1:
            return
        peer, target = best
        assert self.p2p is not None
        self.progress = SyncProgress(True, ours, ours, target)
        started = time.monotonic()
        log.info("syncing from height %d to %d", ours, target)
        try:
            while self.ledger.head.block_number < target:
                start = self.ledger.head.block_number + 1
                items = await self.p2p.request_blocks(peer, start, SYNC_BATCH)
                if not items:
                    break
                for item in items:
                    decision = Decision(Proposal.decode(item.block),
                                        CommitCertificate.decode(item.certificate))
                    # The driver verifies the certificate against the validator set of
                    # that height before the application executes the block.
                    await self.driver.submit(decision)
                    with trio.move_on_after(60) as waited:
                        await self.driver.wait_for_height(decision.height)
                    if waited.cancelled_caught:
                        raise ValueError(f"peer's block {decision.height} was not accepted")
                done = self.ledger.head.block_number - ours
                rate = done / max(time.monotonic() - started, 1e-9)
                self.progress.current = self.ledger.head.block_number
                self.progress.blocks_per_second = rate
                log.info("sync: height %d / %d, %.1f blocks/s", self.ledger.head.block_number,
                         target, rate)
        finally:
            self.progress.syncing = False
