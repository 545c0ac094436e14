"""The node: every service of one OpenLedger process, wired together in one trio nursery.

The ledger (chain over LevelDB), the transaction pool, block production, filters and
subscriptions, and the JSON-RPC server on HTTP and WebSocket ports.
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
from eth_typing import Address

from evm_bridge.ledger import Ledger
from genesis.schema import Genesis
from openledger_node.config import NodeConfig
from openledger_node.producer import BlockProducer
from openledger_node.rpc.context import RpcContext
from openledger_node.rpc.filters import FilterManager
from openledger_node.rpc.server import build_app, serve_rpc
from openledger_node.rpc.subscriptions import SubscriptionHub
from openledger_node.txpool import AccountView, TxPool

log = logging.getLogger(__name__)
CLIENT_VERSION = "OpenLedger/v0.1.0/python"

# RPC namespaces other packages contribute; each registers its methods on import.
OPTIONAL_RPC_MODULES = ("openledger_node.rpc.openledger_namespace",)


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
    def __init__(self, config: NodeConfig, genesis: Genesis,
                 dev_keys: dict[bytes, bytes] | None = None) -> None:
        self.config = config
        self.genesis = genesis
        self.ledger = Ledger.open(config.chaindata, genesis)
        self.head_state = HeadState(self.ledger)
        vm_class = self.ledger.chain.get_vm_class_for_block_number(0)  # type: ignore[arg-type]
        self.pool = TxPool(genesis.chain_id, vm_class.get_transaction_builder(),
                           self.head_state.account)
        self.filters = FilterManager()
        self.subscriptions = SubscriptionHub()
        self.events = ChainEvents([self.filters.on_block, self.subscriptions.on_block])
        self.pool.subscribe(self.filters.on_pending)
        self.pool.subscribe(self.subscriptions.on_pending)
        self.producer = BlockProducer(
            self.ledger, self.pool, self.events.publish, config.block_time,
            on_head_changed=self.head_state.invalidate,
        )
        load_rpc_modules()
        self.rpc_context = RpcContext(
            ledger=self.ledger,
            pool=self.pool,
            filters=self.filters,
            subscriptions=self.subscriptions,
            client_version=CLIENT_VERSION,
            on_transaction=self.producer.notify,
            dev_keys=dict(dev_keys or {}),
        )
        self.rpc_context.extensions["home"] = config.home
        self.shutdown = trio.Event()

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
                nursery.start_soon(self._watch_signals, nursery.cancel_scope)
                await nursery.start(serve_rpc, app, self.rpc_binds, self.shutdown)
                nursery.start_soon(self.producer.run)
                task_status.started()
                await self.shutdown.wait()
                nursery.cancel_scope.deadline = trio.current_time() + 2
                await trio.sleep(1.5)  # let hypercorn close connections
                nursery.cancel_scope.cancel()
        finally:
            self.ledger.close()

    async def _watch_signals(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                self.shutdown.set()
                return
