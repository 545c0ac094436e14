"""The consensus engineer's 4-validator toy-app network, over real libp2p hosts instead of the
in-memory network: same driver, same KV application, ConsensusTransport underneath."""

from __future__ import annotations

import pytest
import trio

from consensus.driver import ConsensusDriver, DriverConfig
from consensus.signer import PrivValidator
from consensus.store import ConsensusDB, MemoryStore
from consensus.types import Validator, address_from_private_key
from p2p.consensus_transport import ConsensusTransport
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
