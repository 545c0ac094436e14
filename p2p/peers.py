"""Peer bookkeeping: the peer book's entries, connection events and libp2p's notifee hook."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import multiaddr
import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID

from p2p.wire import ChainStatus

log = logging.getLogger("openledger.p2p")


@dataclass(frozen=True)
class PeerEvent:
    """A peer connected (`connected=True`) or went away."""

    peer_id: ID
    connected: bool


@dataclass
class PeerRecord:
    """An entry of the peer book."""

    peer_id: ID
    addrs: list[str] = field(default_factory=list)
    static: bool = False
    connected: bool = False
    status: ChainStatus | None = None
    dial_failures: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "peer_id": self.peer_id.to_base58(),
            "addrs": list(self.addrs),
            "static": self.static,
            "connected": self.connected,
            "height": None if self.status is None else self.status.height,
        }


class ConnectionNotifee(INotifee):
    """Forwards libp2p connection events to the service's event loop without blocking."""

    def __init__(self, events: trio.MemorySendChannel[PeerEvent]) -> None:
        self._events = events

    def _post(self, conn: INetConn, connected: bool) -> None:
        try:
            self._events.send_nowait(PeerEvent(conn.muxed_conn.peer_id, connected))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            log.warning("p2p event queue unavailable; connection event lost")

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._post(conn, True)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._post(conn, False)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        return None
