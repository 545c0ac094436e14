"""Devnet instant mode: a block as soon as transactions wait, like anvil.

The lone validator's consensus driver awaits `InstantPacer.before_height` before each new
height: it returns once the pool holds pending transactions, after letting those that arrive
together gather (2 ms steps while more keep coming, 50 ms at most). A lone transaction waits
one step; a stream is not split into one-transaction blocks, whose fixed cost (state root,
persistence, consensus bookkeeping) would otherwise cap throughput at ~150 blocks/s.
"""

from __future__ import annotations

import trio

from openledger_node.txpool import TxPool

COALESCE_STEP = 0.002
COALESCE_MAX = 0.05
MAX_COALESCED = 5_000


class InstantPacer:
    def __init__(self, pool: TxPool) -> None:
        self.pool = pool
        self._wake = trio.Event()

    def notify(self) -> None:
        """A transaction was admitted."""
        self._wake.set()

    async def before_height(self, height: int) -> None:
        while not self.pool.has_pending():
            await self._wake.wait()
            self._wake = trio.Event()
        deadline = trio.current_time() + COALESCE_MAX
        seen = len(self.pool)
        while trio.current_time() < deadline and seen < MAX_COALESCED:
            await trio.sleep(COALESCE_STEP)
            if len(self.pool) == seen:
                return
            seen = len(self.pool)
