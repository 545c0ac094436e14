"""Runtime settings of the p2p service (the node fills them from its TOML config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from p2p.scoring import ScoreParams
from p2p.wire import Kind

KiB = 1024
MiB = 1024 * KiB

DEFAULT_MAX_MESSAGE = {
    Kind.TRANSACTION: 128 * KiB,
    Kind.PROPOSAL: 8 * MiB,
    Kind.VOTE: 16 * KiB,
    Kind.EVIDENCE: 64 * KiB,
    Kind.DECISION: 9 * MiB,
    Kind.IDONTWANT: 32,
}


@dataclass
class P2PConfig:
    """Where to listen, whom to dial, and the limits that protect the node from its peers."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 26656
    static_peers: list[str] = field(default_factory=list)  # always kept connected
    bootnodes: list[str] = field(default_factory=list)  # dialed too, like static peers
    max_peers: int = 50  # inbound connections beyond this are refused
    # Gossip flow control: each peer has a bounded send queue; a broadcast waits up to
    # send_timeout for room, after which the peer counts as stalled and is disconnected
    # (it catches up through sync), so no message is ever dropped silently.
    send_queue_frames: int = 4096
    send_timeout: float = 10.0
    deliver_queue: int = 8192  # per subscribed kind, towards consensus / the tx pool
    max_message: dict[Kind, int] = field(default_factory=lambda: dict(DEFAULT_MAX_MESSAGE))
    # Large messages (blocks) are announced with IDONTWANT to the other peers as soon as
    # they arrive, before validation, so those peers skip relaying them back to us.
    idontwant_min_bytes: int = 16 * KiB  # 0 disables
    seen_ttl: float = 300.0
    # Copies of the same content under different nonces (retransmissions) closer together
    # than this are dropped before validation: honest retransmissions come a rebroadcast
    # interval apart (0.3 s and more), a replay flood does not get amplified.
    replay_window: float = 0.2
    seen_max_entries: int = 200_000
    # Request/response
    request_timeout: float = 10.0
    max_blocks_per_request: int = 256
    max_response_bytes: int = 32 * MiB
    # Connections
    dial_timeout: float = 5.0
    redial_min: float = 0.5
    redial_max: float = 30.0
    handshake: bool = True  # exchange status on connect; drop peers on another chain
    # Peer exchange: while below target_peers, ask connected peers (bootnodes first of all)
    # for the addresses of theirs every discovery_interval seconds and dial new ones once.
    discovery_interval: float = 10.0  # 0 disables
    target_peers: int = 16
    max_shared_addrs: int = 64
    score: ScoreParams = field(default_factory=ScoreParams)

    @property
    def max_gossip_frame(self) -> int:
        return 1 + max(self.max_message.values())
