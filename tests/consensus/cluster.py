"""An in-memory network of validators running the real driver, for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import trio

from consensus.driver import ConsensusDriver, DriverConfig
from consensus.memory import MemoryNetwork
from consensus.signer import PrivValidator
from consensus.state_machine import TimeoutConfig
from consensus.store import ConsensusDB, MemoryStore
from consensus.types import Validator, address_from_private_key
from tests.consensus.factories import CHAIN_ID, make_keys
from tests.consensus.kvapp import KVApp

FAST = TimeoutConfig(
    propose=1.0,
    propose_delta=0.5,
    prevote=0.5,
    prevote_delta=0.25,
    precommit=0.5,
    precommit_delta=0.25,
    commit=0.1,
)


@dataclass
class Node:
    name: str
    key: bytes
    app: KVApp
    store: MemoryStore
    signer_path: Path | None
    double_sign: bool = False
    driver: ConsensusDriver | None = None
    scope: trio.CancelScope | None = None
    history: list[ConsensusDriver] = field(default_factory=list)

    @property
    def address(self) -> bytes:
        return address_from_private_key(self.key)


class Cluster:
    def __init__(
        self,
        nursery: trio.Nursery,
        n: int = 4,
        *,
        powers: list[int] | None = None,
        timeouts: TimeoutConfig = FAST,
        drop_rate: float = 0.0,
        state_dir: Path | None = None,
        double_signer: int | None = None,
        rebroadcast_interval: float = 0.5,
    ) -> None:
        self.nursery = nursery
        self.network = MemoryNetwork(drop_rate=drop_rate, seed=1)
        keys = make_keys(n)
        powers = powers or [10] * n
        genesis = tuple(
            Validator(address_from_private_key(k), p) for k, p in zip(keys, powers, strict=True)
        )
        self.config = DriverConfig(
            CHAIN_ID,
            timeouts=timeouts,
            rebroadcast_interval=rebroadcast_interval,
            now=lambda: 1_700_000_000,
        )
        self.nodes = [
            Node(
                f"v{i}",
                k,
                KVApp(genesis),
                MemoryStore(),
                (state_dir / f"v{i}.json") if state_dir is not None else None,
                double_sign=(i == double_signer),
            )
            for i, k in enumerate(keys)
        ]

    async def start(self, i: int) -> None:
        node = self.nodes[i]
        self.network.set_online(node.name, True)
        signer = PrivValidator(node.key, node.signer_path, double_sign_for_tests=node.double_sign)
        driver = ConsensusDriver(
            node.app, self.network.endpoint(node.name), ConsensusDB(node.store), signer, self.config
        )
        node.driver = driver
        node.history.append(driver)
        scope = trio.CancelScope()
        node.scope = scope

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await driver.run(task_status=task_status)

        await self.nursery.start(run)

    async def start_all(self) -> None:
        for i in range(len(self.nodes)):
            await self.start(i)

    def stop(self, i: int) -> None:
        node = self.nodes[i]
        assert node.scope is not None
        node.scope.cancel()
        self.network.set_online(node.name, False)

    def stop_all(self) -> None:
        for node in self.nodes:
            if node.scope is not None:
                node.scope.cancel()

    async def wait_height(self, height: int, nodes: list[int] | None = None) -> None:
        for i in nodes if nodes is not None else range(len(self.nodes)):
            driver = self.nodes[i].driver
            assert driver is not None
            await driver.wait_for_height(height)

    def hashes(self, i: int) -> list[bytes]:
        return [f.block_hash for f in self.nodes[i].app.finalized]
