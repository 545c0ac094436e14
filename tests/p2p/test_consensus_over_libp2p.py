"""The consensus engineer's 4-validator toy-app network, over real libp2p hosts instead of the
in-memory network: same driver, same KV application, ConsensusTransport underneath."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from consensus.driver import ConsensusDriver, DriverConfig
from consensus.signer import PrivValidator
from consensus.store import ConsensusDB, MemoryStore
from consensus.types import Validator, address_from_private_key
from p2p.consensus_transport import ConsensusTransport
from p2p.host import P2PService
from p2p.identity import NodeIdentity
from tests.consensus.cluster import FAST
from tests.consensus.factories import CHAIN_ID, make_keys
from tests.consensus.kvapp import KVApp
from tests.p2p.conftest import line, make_service, mesh, running

pytestmark = pytest.mark.slow


async def run_network(connect, height: int = 5) -> list[KVApp]:
    keys = make_keys(4)
    genesis = tuple(Validator(address_from_private_key(k), 10) for k in keys)
    config = DriverConfig(CHAIN_ID, timeouts=FAST, rebroadcast_interval=0.5)
    services = [make_service() for _ in keys]
    apps = [KVApp(genesis) for _ in keys]
    drivers = [
        ConsensusDriver(
            app,
            ConsensusTransport(service, CHAIN_ID),
            ConsensusDB(MemoryStore()),
            PrivValidator(key, None),
            config,
        )
        for app, service, key in zip(apps, services, keys, strict=True)
    ]
    async with running(*services) as nursery:
        await connect(*services)
        for driver in drivers:
            await nursery.start(driver.run)
        for app in apps:
            app.submit(b"colour=blue")
        with trio.fail_after(30):
            for driver in drivers:
                await driver.wait_for_height(height)
    return apps


def assert_same_chain(apps: list[KVApp], height: int) -> None:
    chains = [[f.block_hash for f in app.finalized][:height] for app in apps]
    assert all(len(c) == height for c in chains)
    assert all(c == chains[0] for c in chains)
    assert all(app.state[b"colour"] == b"blue" for app in apps)


async def test_four_validators_finalize_over_a_libp2p_mesh():
    assert_same_chain(await run_network(mesh), 5)


async def test_four_validators_finalize_over_a_line_of_relays():
    # v0 - v1 - v2 - v3: v0's votes reach v3 only through two relays.
    assert_same_chain(await run_network(line), 5)


class Validator4:
    """One validator: its own p2p service and driver, restartable on the same store."""

    def __init__(self, key: bytes, genesis: tuple, config: DriverConfig, state: Path) -> None:
        self.key, self.config, self.state = key, config, state
        self.app = KVApp(genesis)
        self.store = MemoryStore()
        self.identity = NodeIdentity.generate()
        self.service: P2PService | None = None
        self.driver: ConsensusDriver | None = None
        self.scope = trio.CancelScope()

    async def start(self, nursery: trio.Nursery, port: int = 0) -> None:
        self.service = P2PService(
            self.identity, make_service(listen_port=port, handshake=False).config
        )
        self.driver = ConsensusDriver(
            self.app,
            ConsensusTransport(self.service, CHAIN_ID),
            ConsensusDB(self.store),
            PrivValidator(self.key, self.state),
            self.config,
        )
        self.scope = trio.CancelScope()
        service, driver, scope = self.service, self.driver, self.scope

        async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                async with trio.open_nursery() as inner:
                    await inner.start(service.run)
                    await inner.start(driver.run)
                    task_status.started()

        await nursery.start(run)

    def stop(self) -> None:
        self.scope.cancel()


async def test_a_validator_that_fell_behind_rejoins_a_stalled_chain(tmp_path):
    # The e2e scenario that once stalled for good: v2 stops, the others decide two more
    # heights, v3 stops (no quorum left), v2 returns behind. It learns the missed heights
    # from decisions while v0 and v1 retransmit their votes of the stalled height, and those
    # retransmissions must still reach v2's driver once it has caught up.
    keys = make_keys(4)
    genesis = tuple(Validator(address_from_private_key(k), 10) for k in keys)
    config = DriverConfig(CHAIN_ID, timeouts=FAST, rebroadcast_interval=0.3)
    nodes = [Validator4(k, genesis, config, tmp_path / f"v{i}.json") for i, k in enumerate(keys)]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await node.start(nursery)
        await mesh(*[n.service for n in nodes])
        with trio.fail_after(30):
            for node in nodes:
                await node.driver.wait_for_height(2)
        port2 = int(nodes[2].service.listen_addrs[0].split("/tcp/")[1].split("/")[0])
        nodes[2].stop()
        with trio.fail_after(30):
            for node in (nodes[0], nodes[1], nodes[3]):
                await node.driver.wait_for_height(nodes[2].app.height + 2)
        nodes[3].stop()
        await trio.sleep(1.5)  # v0 and v1 wait in later and later rounds
        stalled = nodes[0].app.height
        await nodes[2].start(nursery, port=port2)
        for other in nodes[:2]:
            await nodes[2].service.connect(other.service.listen_addrs[0])
        with trio.fail_after(40):
            for node in nodes[:3]:
                await node.driver.wait_for_height(stalled + 2)
        nursery.cancel_scope.cancel()
    chains = [[f.block_hash for f in n.app.finalized][: stalled + 2] for n in nodes[:3]]
    assert chains[0] == chains[1] == chains[2]
