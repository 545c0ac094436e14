"""The node: every service of one OpenLedger process, wired together in one trio nursery.

The ledger (chain over LevelDB), the transaction pool, filters and subscriptions, the JSON-RPC
server on HTTP and WebSocket ports, and consensus (`ConsensusService`): on a network with p2p
and block sync; on the devnet the same driver with one validator and no peers.
"""

from __future__ import annotations

import importlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from eth.abc import BlockAPI, ReceiptAPI, StateAPI
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_typing import Address

from evm_bridge.builder import BuiltBlock
from evm_bridge.ledger import Ledger
from genesis.schema import Genesis
from openledger_node.config import NodeConfig
from openledger_node.consensus_service import TX_GOSSIP_MAX_BYTES, ConsensusService
from openledger_node.pacing import InstantPacer
from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.filters import FilterManager
from openledger_node.rpc.server import build_app, serve_rpc
from openledger_node.rpc.subscriptions import SubscriptionHub
from openledger_node.txpool import AccountView, TxPool
from p2p.config import P2PConfig
from p2p.wire import Kind

log = logging.getLogger(__name__)
CLIENT_VERSION = "OpenLedger/v0.1.0/python"

# RPC namespaces other packages contribute; each registers its methods on import.
OPTIONAL_RPC_MODULES = (
    "openledger_node.rpc.node_info",
    "openledger_node.rpc.openledger_namespace",
)


class HeadState:
    """A read-only state view of the current head, rebuilt only when the head changes."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._state: StateAPI | None = None

    def invalidate(self) -> None:
        self._state = None

    def account(self, address: bytes) -> AccountView:
        if self._state is None:
            self._state = self._ledger.state_at()
        state = self._state
        return AccountView(state.get_nonce(Address(address)), state.get_balance(Address(address)))


@dataclass
class ChainEvents:
    """Fan-out of committed blocks to whoever listens (filters, subscriptions, ...)."""

    listeners: list[Callable[[BlockAPI, tuple[ReceiptAPI, ...]], None]] = field(
        default_factory=list
    )

    def publish(self, block: BlockAPI, receipts: tuple[ReceiptAPI, ...]) -> None:
        for listener in self.listeners:
            try:
                listener(block, receipts)
            except Exception:
                log.exception("block listener failed")


def load_rpc_modules() -> None:
    for name in OPTIONAL_RPC_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


class Node:
    """One node process. `validator_key` None on a network makes a full (non-voting) node.

    `network=False` is the devnet: the lone validator, no p2p; `config.block_time` 0 makes
    a block as soon as transactions wait, otherwise one every `block_time` seconds.
    """

    def __init__(
        self,
        config: NodeConfig,
        genesis: Genesis,
        dev_keys: dict[bytes, bytes] | None = None,
        *,
        network: bool = False,
        validator_key: bytes | None = None,
        double_sign_for_tests: bool = False,
    ) -> None:
        self.config = config
        self.genesis = genesis
        self.ledger = Ledger.open(config.chaindata, genesis)
        self.head_state = HeadState(self.ledger)
        vm_class = self.ledger.chain.get_vm_class_for_block_number(0)  # type: ignore[arg-type]
        self.pool = TxPool(genesis.chain_id, vm_class.get_transaction_builder(),
                           self.head_state.account)
        self._sync_pool_params()
        self.filters = FilterManager()
        self.subscriptions = SubscriptionHub()
        self.events = ChainEvents([self.filters.on_block, self.subscriptions.on_block])
        self.pool.subscribe(self.filters.on_pending)
        self.pool.subscribe(self.subscriptions.on_pending)
        load_rpc_modules()
        self.rpc_context = RpcContext(
            ledger=self.ledger,
            pool=self.pool,
            filters=self.filters,
            subscriptions=self.subscriptions,
            client_version=CLIENT_VERSION,
            dev_keys=dict(dev_keys or {}),
        )
        p2p_config = None
        pacer = None
        if network:
            p2p_config = P2PConfig(listen_host=config.p2p_host, listen_port=config.p2p_port,
                                   static_peers=list(config.peers))
            p2p_config.max_message[Kind.TRANSACTION] = TX_GOSSIP_MAX_BYTES + 1024
        elif config.block_time == 0:
            pacer = InstantPacer(self.pool)
            self.rpc_context.on_transaction = pacer.notify
        self.consensus = ConsensusService(
            config.home, genesis, self.ledger, self.pool, p2p_config, validator_key,
            self.on_block_committed, double_sign_for_tests=double_sign_for_tests,
            before_height=pacer.before_height if pacer is not None else None,
            block_time=None if network else config.block_time,
        )
        self.pool.subscribe(self.consensus.gossip_transaction)
        self.rpc_context.peer_count = self.consensus.peer_count
        self.rpc_context.syncing = self.consensus.syncing
        self.rpc_context.extensions.update(home=config.home, node=self)
        self.shutdown = trio.Event()

    # -- block commits -------------------------------------------------------------------------
    def on_block_committed(self, built: BuiltBlock) -> None:
        """After a block is on disk: refresh pool views, drop what it used, tell listeners."""
        self.head_state.invalidate()
        block = built.block
        for tx, reason in built.skipped:
            if reason != "block gas limit reached":
                log.info("dropping transaction 0x%s: %s", tx.hash.hex(), reason)
                self.pool.drop(tx.hash)
        self.pool.remove_stale({bytes(tx.sender) for tx in block.transactions})
        self._sync_pool_params()
        if block.transactions:
            log.info("block %d: %d transactions, gas %d", block.header.block_number,
                     len(block.transactions), block.header.gas_used)
        self.events.publish(block, built.receipts)

    def _sync_pool_params(self) -> None:
        head = self.ledger.head
        self.pool.base_fee = int(calculate_expected_base_fee_per_gas(head))
        self.pool.block_gas_limit = head.gas_limit

    # -- running -------------------------------------------------------------------------------
    @property
    def rpc_binds(self) -> list[str]:
        host = self.config.rpc_host
        binds = [f"{host}:{self.config.rpc_port}"]
        if self.config.ws_port and self.config.ws_port != self.config.rpc_port:
            binds.append(f"{host}:{self.config.ws_port}")
        return binds

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        app = build_app(self.rpc_context, self.config.cors_origins,
                        self.config.rpc_max_concurrency)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_signals)
                await nursery.start(self.consensus.run)
                await nursery.start(serve_rpc, app, self.rpc_binds, self.shutdown)
                if self.config.lora_worker:
                    nursery.start_soon(self._run_lora_worker)
                task_status.started()
                await self.shutdown.wait()
                await trio.sleep(1.0)  # let hypercorn close its connections
                nursery.cancel_scope.cancel()
        finally:
            self.ledger.close()

    async def _run_lora_worker(self) -> None:
        """Run the OpenLoRA worker as a child process for as long as the node runs."""
        from openlora.service import start_worker_process

        config = self.config
        adapters = config.home / config.lora_adapters_dir
        adapters.mkdir(parents=True, exist_ok=True)
        rpc_host = "127.0.0.1" if config.rpc_host in ("0.0.0.0", "::") else config.rpc_host
        process = start_worker_process(
            config.lora_host, config.lora_port, config.lora_base_model or None, adapters,
            extra_args=["--rpc-url", f"http://{rpc_host}:{config.rpc_port}",
                        "--receipts-file", str(config.home / "inference_receipts.jsonl"),
                        *config.lora_args],
        )
        log.info("OpenLoRA worker started (pid %d) on %s:%d", process.pid, config.lora_host,
                 config.lora_port)
        try:
            while process.poll() is None:
                await trio.sleep(1)
            log.error("OpenLoRA worker exited with status %s", process.returncode)
        finally:
            if process.poll() is None:
                process.terminate()  # the worker shuts down gracefully on SIGTERM
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    while process.poll() is None:
                        await trio.sleep(0.1)
                if process.poll() is None:
                    process.kill()

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                self.shutdown.set()
                return
