"""Block production for a single-validator chain (the devnet), in the manner of anvil.

Instant mode (`block_time == 0`): a block as soon as transactions wait; transactions that
arrive while a block is being built go into the next one. Interval mode: one block every
`block_time` seconds, empty or not. Execution runs in slices with checkpoints between them,
so RPC keeps answering while a large block is built.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from evm_bridge.builder import BuiltBlock
from evm_bridge.ledger import Ledger
from openledger_node.txpool import TxPool

log = logging.getLogger(__name__)
SLICE = 100  # transactions executed between two event-loop checkpoints
MAX_BLOCK_TXS = 5_000
# Instant mode gathers transactions that arrive together into one block: it waits while more
# keep arriving, COALESCE_STEP at a time, at most COALESCE_MAX in all. A lone transaction
# waits one step (2 ms); a stream is not split into one-transaction blocks, whose fixed cost
# (state root, persistence) would otherwise cap throughput at ~150 blocks/s.
COALESCE_STEP = 0.002
COALESCE_MAX = 0.05

CommitListener = Callable[[BuiltBlock], None]


class BlockProducer:
    def __init__(
        self,
        ledger: Ledger,
        pool: TxPool,
        on_commit: CommitListener,
        block_time: float = 0.0,
        coinbase: bytes = b"\x00" * 20,
    ) -> None:
        self.ledger = ledger
        self.pool = pool
        self.on_commit = on_commit
        self.block_time = block_time
        self.coinbase = coinbase
        self._wake = trio.Event()
        self.blocks_built = 0

    def notify(self) -> None:
        """A transaction arrived (instant mode builds a block for it)."""
        self._wake.set()

    async def run(self) -> None:
        if self.block_time > 0:
            while True:
                started = trio.current_time()
                await self.produce_block()
                await trio.sleep_until(started + self.block_time)
        while True:
            if not self.pool.has_pending():
                await self._wake.wait()
                self._wake = trio.Event()
                continue
            await self._coalesce()
            await self.produce_block()
            await trio.sleep(0)

    async def _coalesce(self) -> None:
        deadline = trio.current_time() + COALESCE_MAX
        seen = len(self.pool)
        while trio.current_time() < deadline and seen < MAX_BLOCK_TXS:
            await trio.sleep(COALESCE_STEP)
            if len(self.pool) == seen:
                return
            seen = len(self.pool)

    async def produce_block(self) -> BuiltBlock:
        txs = self.pool.select(self.ledger.head.gas_limit, MAX_BLOCK_TXS)
        job = self.ledger.start_block(txs, int(time.time()), coinbase=self.coinbase)
        while not job.step(SLICE):
            await trio.sleep(0)
        built = job.finish()
        self.ledger.commit(built)
        self.blocks_built += 1
        self.on_commit(built)
        return built
