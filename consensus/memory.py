"""An in-memory network of `TransportAPI` endpoints for tests and benchmarks.

Messages go through `encode_message` / `decode_message` like on the wire. Endpoints can be
taken offline (they neither send nor receive, as a crashed or partitioned node), and delivery
can drop messages at a seeded random rate, as gossip does.
"""

from __future__ import annotations

import random

import trio

from consensus.abc import TransportAPI
from consensus.types import ConsensusMessage, decode_message, encode_message


class MemoryNetwork:
    """A hub that connects `MemoryTransport` endpoints."""

    def __init__(self, *, drop_rate: float = 0.0, seed: int = 0, queue_size: int = 10_000) -> None:
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError("drop_rate must be in [0, 1)")
        self.drop_rate = drop_rate
        self._random = random.Random(seed)
        self._queue_size = queue_size
        self._endpoints: dict[str, MemoryTransport] = {}
        self.delivered = 0
        self.dropped = 0

    def endpoint(self, name: str) -> MemoryTransport:
        """The endpoint called `name` (created on first use, online)."""
        ep = self._endpoints.get(name)
        if ep is None:
            ep = self._endpoints[name] = MemoryTransport(self, name, self._queue_size)
        return ep

    def set_online(self, name: str, online: bool) -> None:
        ep = self.endpoint(name)
        ep.online = online
        if not online:
            ep.drain()  # what was in flight to a crashed node is lost

    def inject(self, sender: str, data: bytes) -> None:
        """Deliver raw bytes from `sender` to everyone else (tests: garbage, replays)."""
        self._deliver(self.endpoint(sender), data)

    def _deliver(self, sender: MemoryTransport, data: bytes) -> None:
        if not sender.online:
            return
        for ep in self._endpoints.values():
            if ep is sender or not ep.online:
                continue
            if self.drop_rate and self._random.random() < self.drop_rate:
                self.dropped += 1
                continue
            try:
                ep._send.send_nowait(data)
                self.delivered += 1
            except trio.WouldBlock:
                self.dropped += 1


class MemoryTransport(TransportAPI):
    """One node's endpoint on a MemoryNetwork."""

    def __init__(self, network: MemoryNetwork, name: str, queue_size: int) -> None:
        self.network = network
        self.name = name
        self.online = True
        self._send, self._recv = trio.open_memory_channel[bytes](queue_size)

    async def broadcast(self, message: ConsensusMessage) -> None:
        self.network._deliver(self, encode_message(message))
        await trio.lowlevel.checkpoint()

    async def receive(self) -> ConsensusMessage:
        """The next message; raises DecodeError for bytes that do not decode (the driver
        drops those and goes on)."""
        while True:
            data = await self._recv.receive()
            if self.online:
                return decode_message(data)

    def drain(self) -> None:
        while True:
            try:
                self._recv.receive_nowait()
            except trio.WouldBlock:
                return
