"""Factories for real libp2p hosts on 127.0.0.1 inside one trio process."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from p2p.abc import SyncProviderAPI
from p2p.config import P2PConfig
from p2p.host import P2PService
from p2p.identity import NodeIdentity
from p2p.wire import BlockWithCertificate, ChainStatus

GENESIS = hashlib.sha256(b"test genesis").digest()


class MemoryChain(SyncProviderAPI):
    """A test double of the node's chain: `height` blocks with fake certificates."""

    def __init__(self, height: int, chain_id: int = 1337, genesis: bytes = GENESIS) -> None:
        self.height = height
        self.chain_id = chain_id
        self.genesis = genesis
        self.calls: list[tuple[int, int]] = []

    @staticmethod
    def block(h: int) -> BlockWithCertificate:
        return BlockWithCertificate(b"block-%d" % h + bytes(100), b"cert-%d" % h)

    async def get_status(self) -> ChainStatus:
        latest = hashlib.sha256(b"%d" % self.height).digest()
        return ChainStatus(self.chain_id, self.genesis, self.height, latest)

    async def get_blocks(self, start: int, count: int) -> list[BlockWithCertificate]:
        self.calls.append((start, count))
        return [self.block(h) for h in range(start, min(start + count, self.height + 1))]


def make_service(
    sync: SyncProviderAPI | None = None, static_peers: list[str] | None = None, **overrides
) -> P2PService:
    config = P2PConfig(
        listen_port=0,
        static_peers=static_peers or [],
        dial_timeout=3.0,
        redial_min=0.1,
        redial_max=1.0,
        request_timeout=3.0,
        discovery_interval=0,  # peer exchange is tested on its own
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return P2PService(NodeIdentity.generate(), config, sync)


@asynccontextmanager
async def running(*services: P2PService) -> AsyncIterator[trio.Nursery]:
    """Run the services in a nursery; cancel them all on exit."""
    async with trio.open_nursery() as nursery:
        for service in services:
            await nursery.start(service.run)
        yield nursery
        nursery.cancel_scope.cancel()


async def line(*services: P2PService) -> None:
    """Connect each service to the next one (A-B-C...) and wait for the sessions."""
    for left, right in itertools.pairwise(services):
        await left.connect(right.listen_addrs[0])
    for i, service in enumerate(services):
        expected = (i > 0) + (i < len(services) - 1)
        await service.wait_for_peers(expected, timeout=5)


async def mesh(*services: P2PService) -> None:
    """Connect every pair and wait until each has all the others as peers."""
    for i, left in enumerate(services):
        for right in services[i + 1 :]:
            await left.connect(right.listen_addrs[0])
    for service in services:
        await service.wait_for_peers(len(services) - 1, timeout=5)
