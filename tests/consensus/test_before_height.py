"""`DriverConfig.before_height`: a lone validator that makes blocks only when there is work."""

from __future__ import annotations

import trio
import trio.testing

from consensus.driver import ConsensusDriver, DriverConfig
from consensus.memory import MemoryNetwork
from consensus.signer import PrivValidator
from consensus.store import ConsensusDB, MemoryStore
from consensus.types import Validator, address_from_private_key
from tests.consensus.cluster import FAST
from tests.consensus.factories import CHAIN_ID, make_keys
from tests.consensus.kvapp import KVApp


async def test_heights_wait_for_the_hook(autojump_clock: trio.testing.MockClock) -> None:
    key = make_keys(1)[0]
    app = KVApp((Validator(address_from_private_key(key), 10),))
    work = trio.Event()
    asked: list[int] = []

    async def before_height(height: int) -> None:
        asked.append(height)
        await work.wait()

    config = DriverConfig(CHAIN_ID, timeouts=FAST, before_height=before_height)
    network = MemoryNetwork()
    network.set_online("solo", True)
    driver = ConsensusDriver(app, network.endpoint("solo"), ConsensusDB(MemoryStore()),
                             PrivValidator(key), config)
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        await trio.sleep(60)
        assert driver.height == 0 and asked == [1]  # idle: no empty blocks
        app.submit(b"k=v")
        work.set()
        with trio.fail_after(10):
            await driver.wait_for_height(1)
        nursery.cancel_scope.cancel()
    assert app.state[b"k"] == b"v"
