"""`P2PService`: a py-libp2p host on trio with reliable gossip, request/response and a peer book.

Gossip does not use libp2p's gossipsub, whose defaults drop messages silently (rate limits,
32-entry queues). Each connected peer instead gets one long-lived outbound stream fed by a
bounded FIFO send queue; a broadcast waits for room (flow control) and a peer that cannot
drain its queue within `send_timeout` is disconnected as stalled and catches up through sync.
So a message is either delivered in order or its peer is visibly gone: nothing vanishes
silently. Received messages are size-checked, deduplicated by hash (a seen-cache with
expiry), judged by the kind's validator, delivered to local subscribers and relayed once to
the other peers. Misbehaviour lowers the sender's score; below the threshold it is
disconnected and not redialed until its ban expires.

Start it in the node's nursery: `await nursery.start(service.run)`.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import logging
import os
import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport

from p2p.abc import SyncProviderAPI, ValidationResult, Validator
from p2p.config import P2PConfig
from p2p.errors import (
    MalformedAnswer,
    P2PError,
    PeerUnavailable,
    ProtocolError,
    RequestRefused,
    RequestTimeout,
)
from p2p.identity import (
    AddressError,
    NodeIdentity,
    listen_multiaddr,
    parse_peer_addr,
    peer_multiaddr,
)
from p2p.peers import ConnectionNotifee, PeerEvent, PeerRecord
from p2p.reqresp import (
    BLOCKS_PROTOCOL,
    PEERS_PROTOCOL,
    STATUS_PROTOCOL,
    Answer,
    answer_blocks,
    answer_status,
    send_request,
    serve_request,
)
from p2p.scoring import Offense, PeerScorer
from p2p.seen import SeenCache
from p2p.streams import FrameReader, StreamEnded
from p2p.wire import (
    NONCE_SIZE,
    ZERO_NONCE,
    BlockRangeRequest,
    BlockWithCertificate,
    ChainStatus,
    DecodeError,
    FrameTooLarge,
    Kind,
    RemoteError,
    decode_blocks_response,
    decode_gossip,
    decode_peers_response,
    decode_status_response,
    encode_frame,
    encode_gossip,
    encode_peers_response,
)

_T = TypeVar("_T")

__all__ = [  # what callers import from here (errors and records live in their own modules)
    "BLOCKS_PROTOCOL",
    "GOSSIP_PROTOCOL",
    "PEERS_PROTOCOL",
    "STATUS_PROTOCOL",
    "GossipMessage",
    "P2PError",
    "P2PService",
    "PeerEvent",
    "PeerRecord",
    "PeerUnavailable",
    "ProtocolError",
    "RequestRefused",
    "RequestTimeout",
]

log = logging.getLogger("openledger.p2p")

GOSSIP_PROTOCOL = TProtocol("/openledger/gossip/1.0.0")
ADDRS_PER_PEER = 4
DONTWANT_ENTRIES = 10_000
WRITE_BATCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class GossipMessage:
    """A validated gossip message handed to a local subscriber."""

    kind: Kind
    data: bytes
    sender: ID


@dataclass
class _Session:
    """The outbound half of a connection: a bounded queue and the task that drains it."""

    peer_id: ID
    send: trio.MemorySendChannel[bytes]
    recv: trio.MemoryReceiveChannel[bytes]
    epoch: int  # unique per connection: hints from an earlier connection do not apply
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)


def message_id(payload: bytes) -> bytes:
    """The dedupe key of a gossip payload (kind byte + body)."""
    return hashlib.sha256(payload).digest()


class P2PService:
    """The node's libp2p host: peers, gossip of the four kinds, status and block sync."""

    def __init__(
        self,
        identity: NodeIdentity,
        config: P2PConfig | None = None,
        sync_provider: SyncProviderAPI | None = None,
    ) -> None:
        self.identity = identity
        self.config = config or P2PConfig()
        self.sync_provider = sync_provider
        self.scorer = PeerScorer(self.config.score)
        self.stats: Counter[str] = Counter()
        self._seen = SeenCache(self.config.seen_ttl, self.config.seen_max_entries)
        self._recent_content = SeenCache(
            max(self.config.replay_window, 1e-3), self.config.seen_max_entries
        )
        self._validators: dict[Kind, Validator] = {}
        self._subscribers: dict[Kind, list[trio.MemorySendChannel[GossipMessage]]] = {}
        self._peer_listeners: list[trio.MemorySendChannel[PeerEvent]] = []
        self._sessions: dict[ID, _Session] = {}
        self._book: dict[ID, PeerRecord] = {}
        self._changes: dict[ID, trio.Event] = {}
        self._epochs = itertools.count()
        # message id -> sessions (peer, epoch) that told us they already have it
        self._dontwant: OrderedDict[bytes, set[tuple[ID, int]]] = OrderedDict()
        self._host: IHost | None = None
        self._nursery: trio.Nursery | None = None
        self._events_send, self._events_recv = trio.open_memory_channel[PeerEvent](10_000)

    # ------------------------------------------------------------------ wiring

    def set_validator(self, kind: Kind, validator: Validator) -> None:
        """Judge every received message of `kind` before it is delivered or relayed."""
        self._validators[kind] = validator

    def subscribe(self, *kinds: Kind) -> trio.MemoryReceiveChannel[GossipMessage]:
        """One channel of validated messages of the given kinds from peers, in the order each
        peer sent them (never our own broadcasts).

        The channel is bounded: a consumer that falls behind slows its peers down (flow
        control) rather than losing messages. Close the channel to unsubscribe.
        """
        if not kinds:
            raise ValueError("subscribe to at least one kind")
        send, recv = trio.open_memory_channel[GossipMessage](self.config.deliver_queue)
        for kind in kinds:
            self._subscribers.setdefault(kind, []).append(send)
        return recv

    def subscribe_peer_events(self) -> trio.MemoryReceiveChannel[PeerEvent]:
        """A channel of peer connect/disconnect events, e.g. to resend current votes."""
        send, recv = trio.open_memory_channel[PeerEvent](1024)
        self._peer_listeners.append(send)
        return recv

    # ------------------------------------------------------------------ state

    @property
    def host(self) -> IHost:
        if self._host is None:
            raise P2PError("the p2p service is not running")
        return self._host

    @property
    def peer_id(self) -> ID:
        return self.identity.peer_id

    @property
    def listen_addrs(self) -> list[str]:
        """Dialable `/ip4/.../tcp/PORT/p2p/ID` addresses (the real port when 0 was asked)."""
        return [peer_multiaddr(a, self.peer_id) for a in self.host.get_transport_addrs()]

    def connected_peers(self) -> list[ID]:
        return list(self._sessions)

    @property
    def peer_count(self) -> int:
        return len(self._sessions)

    def peer_book(self) -> list[PeerRecord]:
        return list(self._book.values())

    def peer_status(self, peer: ID) -> ChainStatus | None:
        record = self._book.get(peer)
        return None if record is None else record.status

    def _record(self, peer: ID) -> PeerRecord:
        record = self._book.get(peer)
        if record is None:
            record = self._book[peer] = PeerRecord(peer)
        return record

    # ------------------------------------------------------------------ lifecycle

    def _new_host(self) -> IHost:
        key_pair = self.identity.key_pair
        noise = NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
        connections = ConnectionConfig(
            max_connections=max(4, 4 * self.config.max_peers),
            high_watermark=max(4, 4 * self.config.max_peers),
            low_watermark=0,  # we dial our peers ourselves; no auto-connect to the peerstore
            min_connections=0,
            max_connections_per_peer=2,
            dial_timeout=self.config.dial_timeout,
        )
        return new_host(
            key_pair=key_pair,
            sec_opt={NOISE_PROTOCOL_ID: noise},  # Noise only: no plaintext, no secio
            muxer_preference="YAMUX",
            connection_config=connections,
            listen_addrs=[self._listen_addr()],
        )

    def _listen_addr(self) -> multiaddr.Multiaddr:
        return listen_multiaddr(self.config.listen_host, self.config.listen_port)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, dial static peers and bootnodes, serve until cancelled."""
        seeds = [parse_peer_addr(a) for a in [*self.config.static_peers, *self.config.bootnodes]]
        host = self._new_host()
        host.set_stream_handler(GOSSIP_PROTOCOL, self._handle_gossip_stream)
        host.set_stream_handler(STATUS_PROTOCOL, self._handle_status_request)
        host.set_stream_handler(BLOCKS_PROTOCOL, self._handle_blocks_request)
        host.set_stream_handler(PEERS_PROTOCOL, self._handle_peers_request)
        host.get_network().register_notifee(ConnectionNotifee(self._events_send))
        async with host.run(listen_addrs=[self._listen_addr()]):
            self._host = host
            # libp2p's auto-connector would redial any peer in the peerstore, banned ones
            # too; this service decides whom to dial (static peers, bootnodes) itself.
            connector = getattr(host.get_network(), "auto_connector", None)
            if connector is not None:
                await connector.stop()
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._process_events)
                    for info in seeds:
                        self._start_keeper(info)
                    if self.config.discovery_interval > 0:
                        nursery.start_soon(self._discover)
                    log.info("p2p listening on %s", ", ".join(self.listen_addrs))
                    task_status.started()
                    await trio.sleep_forever()
            finally:
                self._nursery = None
                for session in self._sessions.values():
                    session.scope.cancel()
                self._sessions.clear()

    def add_peer(self, addr: str) -> ID:
        """Keep a connection to `addr` (a `/ip4/.../tcp/PORT/p2p/ID` multiaddr) from now on."""
        info = parse_peer_addr(addr)
        self._start_keeper(info)
        return info.peer_id

    def _start_keeper(self, info: PeerInfo) -> None:
        if self._nursery is None:
            raise P2PError("the p2p service is not running")
        record = self._record(info.peer_id)
        if record.static:
            return
        record.static = True
        record.addrs = [str(a) for a in info.addrs]
        self._nursery.start_soon(self._keep_connected, info)

    async def connect(self, addr: str) -> ID:
        """Dial a peer once (no redial); raises PeerUnavailable on failure."""
        info = parse_peer_addr(addr)
        if self.scorer.is_banned(info.peer_id):
            raise PeerUnavailable(f"peer {info.peer_id} is banned")
        try:
            with trio.fail_after(self.config.dial_timeout):
                await self.host.connect(info)
        except Exception as exc:
            raise PeerUnavailable(f"cannot connect to {addr}: {exc}") from exc
        record = self._record(info.peer_id)
        record.addrs = [str(a) for a in info.addrs]
        return info.peer_id

    async def disconnect(self, peer: ID, ban_seconds: float | None = None) -> None:
        """Close all connections to `peer`; with `ban_seconds`, refuse it for that long."""
        if ban_seconds is not None:
            self.scorer.ban(peer, ban_seconds)
        self._end_session(peer)
        try:
            with trio.move_on_after(5):
                await self.host.disconnect(peer)
        except Exception as exc:
            log.debug("disconnecting %s: %s", peer, exc)

    async def wait_for_peers(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least `count` peers have an open gossip session."""
        with trio.fail_after(timeout):
            while self.peer_count < count:
                await trio.sleep(0.02)

    def _is_connected(self, peer: ID) -> bool:
        return bool(self.host.get_network().get_connections(peer))

    def _change_event(self, peer: ID) -> trio.Event:
        event = self._changes.get(peer)
        if event is None:
            event = self._changes[peer] = trio.Event()
        return event

    def _signal_change(self, peer: ID) -> None:
        event = self._changes.pop(peer, None)
        if event is not None:
            event.set()

    async def _keep_connected(self, info: PeerInfo) -> None:
        """Redial a static peer whenever it is disconnected, with exponential backoff."""
        peer = info.peer_id
        backoff = self.config.redial_min
        while True:
            ban_left = self.scorer.banned_for(peer)
            if ban_left > 0:
                await trio.sleep(ban_left)
                continue
            changed = self._change_event(peer)
            if self._is_connected(peer):
                backoff = self.config.redial_min
                await changed.wait()
                continue
            try:
                with trio.fail_after(self.config.dial_timeout):
                    await self.host.connect(info)
                backoff = self.config.redial_min
                self._record(peer).dial_failures = 0
            except Exception as exc:
                self._record(peer).dial_failures += 1
                log.debug("dial %s failed (%s); retry in %.1fs", peer, exc, backoff)
                await trio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.config.redial_max)

    async def _process_events(self) -> None:
        """The one task that opens and closes gossip sessions as connections come and go."""
        async for event in self._events_recv:
            peer = event.peer_id
            try:
                if event.connected:
                    self._on_connected(peer)
                elif not self._is_connected(peer):
                    self._end_session(peer)
            except Exception:  # a bug here must not take the node's networking down
                log.exception("handling %s failed", event)
            self._signal_change(peer)

    def _end_session(self, peer: ID) -> None:
        """Stop gossiping with `peer` (its connection is gone or being closed)."""
        session = self._sessions.pop(peer, None)
        if session is not None:
            session.scope.cancel()
            self._record(peer).connected = False
            self._notify_peer_listeners(PeerEvent(peer, False))
            log.info("peer %s disconnected (%d peers)", peer, self.peer_count)

    def _on_connected(self, peer: ID) -> None:
        assert self._nursery is not None
        if peer in self._sessions:
            return
        if self.scorer.is_banned(peer):
            log.info("refusing banned peer %s", peer)
            self._nursery.start_soon(self.disconnect, peer)
            return
        record = self._record(peer)
        if not record.static and self.peer_count >= self.config.max_peers:
            log.info("refusing peer %s: %d peers already", peer, self.peer_count)
            self._nursery.start_soon(self.disconnect, peer)
            return
        send, recv = trio.open_memory_channel[bytes](self.config.send_queue_frames)
        session = _Session(peer, send, recv, next(self._epochs))
        self._sessions[peer] = session
        record.connected = True
        self._nursery.start_soon(self._run_session, session)
        if self.config.handshake and self.sync_provider is not None:
            self._nursery.start_soon(self._handshake, peer)
        self._notify_peer_listeners(PeerEvent(peer, True))
        log.info("peer %s connected (%d peers)", peer, self.peer_count)

    def _notify_peer_listeners(self, event: PeerEvent) -> None:
        for listener in list(self._peer_listeners):
            try:
                listener.send_nowait(event)
            except trio.WouldBlock:
                log.warning("peer event listener is full; event for %s lost", event.peer_id)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._peer_listeners.remove(listener)

    async def _run_session(self, session: _Session) -> None:
        """Open the outbound gossip stream and write queued frames to it, in order."""
        peer = session.peer_id
        stream: INetStream | None = None
        failed = False
        with session.scope:
            try:
                with trio.fail_after(self.config.dial_timeout):
                    stream = await self.host.new_stream(peer, [GOSSIP_PROTOCOL])
                async with session.recv:
                    async for first in session.recv:
                        batch = [first]
                        size = len(first)
                        while size < WRITE_BATCH_BYTES:
                            try:
                                frame = session.recv.receive_nowait()
                            except trio.WouldBlock:
                                break
                            batch.append(frame)
                            size += len(frame)
                        await stream.write(b"".join(batch))
                        self.stats["frames_sent"] += len(batch)
            except Exception as exc:
                failed = True
                log.info("gossip stream to %s failed: %s", peer, exc)
        if stream is not None:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                try:
                    await stream.reset()
                except Exception:
                    pass
        if failed and self._sessions.get(peer) is session:
            await self.disconnect(peer)

    async def _handshake(self, peer: ID) -> None:
        """Learn the peer's status; drop it for good when it follows another chain."""
        assert self.sync_provider is not None
        try:
            theirs = await self.request_status(peer)
            ours = await self.sync_provider.get_status()
        except P2PError as exc:
            log.info("status handshake with %s failed: %s", peer, exc)
            return
        except Exception:  # the node's provider failed: its bug, not the peer's
            log.exception("status handshake with %s failed", peer)
            return
        if (theirs.chain_id, theirs.genesis_hash) != (ours.chain_id, ours.genesis_hash):
            log.warning(
                "peer %s is on chain %d genesis %s, we are on %d %s: banned",
                peer,
                theirs.chain_id,
                theirs.genesis_hash.hex(),
                ours.chain_id,
                ours.genesis_hash.hex(),
            )
            self._punish(peer, Offense.WRONG_CHAIN)

    def _punish(self, peer: ID, offense: Offense) -> None:
        self.stats[f"offense_{offense.name.lower()}"] += 1
        if self.scorer.penalize(peer, offense) and self._nursery is not None:
            log.warning(
                "peer %s banned for %.0fs (score %.0f, offenses %s)",
                peer,
                self.config.score.ban_seconds,
                self.scorer.score(peer),
                self.scorer.offenses(peer),
            )
            self._nursery.start_soon(self.disconnect, peer)

    # ------------------------------------------------------------------ gossip out

    def _gossip_frame(self, kind: Kind, data: bytes, fresh: bool) -> tuple[bytes, bytes]:
        if kind is Kind.IDONTWANT:
            raise ValueError("IDONTWANT is a control message the service sends itself")
        limit = self.config.max_message[kind]
        if len(data) > limit:
            raise ValueError(f"{kind.name} of {len(data)} bytes exceeds the {limit} byte limit")
        payload = encode_gossip(kind, data, os.urandom(NONCE_SIZE) if fresh else ZERO_NONCE)
        return message_id(payload), encode_frame(payload)

    async def broadcast(self, kind: Kind, data: bytes, *, resend: bool = True) -> int:
        """Queue `data` for connected peers; returns how many peers got it queued.

        With `resend` (the default, what consensus wants) each call is a message of its own:
        it reaches every peer and every peer's consumer again, even when an earlier copy of
        the same bytes was delivered (and perhaps discarded while the peer was catching up).
        With `resend=False` the message is identified by its content: peers known to have
        it already are skipped and receivers drop it as a duplicate, which suits announcing
        transactions. Waits while a peer's queue is full (up to `send_timeout`, then that
        peer is dropped as stalled). Our own messages are never delivered back to us.
        """
        msg_id, frame = self._gossip_frame(kind, data, fresh=resend)
        self._seen.add(msg_id)
        return await self._fan_out(msg_id, frame, exclude=None, skip_known=not resend)

    async def send_to(self, peer: ID, kind: Kind, data: bytes) -> bool:
        """Queue `data` for one peer only (e.g. resending current votes to a new peer)."""
        msg_id, frame = self._gossip_frame(kind, data, fresh=True)
        self._seen.add(msg_id)  # ours: never deliver it back to ourselves
        session = self._sessions.get(peer)
        if session is None or not await self._enqueue(session, frame):
            return False
        self._seen.known_by(msg_id).add(peer)
        return True

    async def _fan_out(
        self, msg_id: bytes, frame: bytes, exclude: ID | None, skip_known: bool = True
    ) -> int:
        """Queue a frame for every peer except `exclude` and, with `skip_known`, except the
        peers known to have it already."""
        known = self._seen.known_by(msg_id)
        if exclude is not None:
            known.add(exclude)
        # IDONTWANT hints only spare relays: our own (re)broadcasts always go out, since a
        # peer that hinted may still have IGNOREd the message and need a retransmission.
        dontwant = self._dontwant.get(msg_id, set()) if exclude is not None else set()
        sessions = [
            s
            for p, s in self._sessions.items()
            if p != exclude and not (skip_known and p in known) and (p, s.epoch) not in dontwant
        ]
        sent = 0
        for session in sessions:
            if await self._enqueue(session, frame):
                known.add(session.peer_id)
                sent += 1
        return sent

    async def _enqueue(self, session: _Session, frame: bytes) -> bool:
        try:
            session.send.send_nowait(frame)
            return True
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        with trio.move_on_after(self.config.send_timeout):
            try:
                await session.send.send(frame)
                return True
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return False
        self.stats["peers_stalled"] += 1
        log.warning(
            "peer %s stalled: send queue full for %.1fs", session.peer_id, self.config.send_timeout
        )
        self._punish(session.peer_id, Offense.STALLED)
        if self._nursery is not None:
            self._nursery.start_soon(self.disconnect, session.peer_id)
        return False

    # ------------------------------------------------------------------ gossip in

    async def _handle_gossip_stream(self, stream: INetStream) -> None:
        """Read a peer's gossip frames, in order, until it closes or misbehaves."""
        peer = stream.muxed_conn.peer_id
        reader = FrameReader(stream, self.config.max_gossip_frame)
        try:
            while not self.scorer.is_banned(peer):
                try:
                    frame = await reader.read_frame()
                except StreamEnded:
                    break
                except FrameTooLarge as exc:
                    log.info("peer %s: %s", peer, exc)
                    self._punish(peer, Offense.OVERSIZED)
                    break  # the stream is out of sync: drop it
                except DecodeError as exc:
                    log.info("peer %s: %s", peer, exc)
                    self._punish(peer, Offense.MALFORMED)
                    break
                await self._on_gossip(peer, frame)
        except Exception as exc:  # stream reset, connection lost, or a bug: never crash
            log.debug("gossip stream from %s ended: %r", peer, exc)
        finally:
            with trio.move_on_after(1) as cleanup:
                cleanup.shield = True
                try:
                    await stream.reset()
                except Exception:
                    pass

    async def _validate(self, kind: Kind, body: bytes, peer: ID) -> ValidationResult:
        validator = self._validators.get(kind)
        if validator is None:
            return ValidationResult.ACCEPT
        try:
            verdict = validator(body, peer)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except Exception as exc:
            log.debug("validator for %s raised on a message from %s: %r", kind.name, peer, exc)
            return ValidationResult.REJECT
        if not isinstance(verdict, ValidationResult):
            log.error("validator for %s returned %r, not a ValidationResult", kind.name, verdict)
            return ValidationResult.IGNORE
        return verdict

    async def _on_gossip(self, peer: ID, payload: bytes) -> None:
        self.stats["gossip_received"] += 1
        try:
            kind, body = decode_gossip(payload)
        except DecodeError as exc:
            log.info("peer %s: %s", peer, exc)
            self._punish(peer, Offense.MALFORMED)
            return
        if len(body) > self.config.max_message[kind]:
            self._punish(peer, Offense.OVERSIZED)
            return
        if kind is Kind.IDONTWANT:
            self._on_dontwant(peer, body)
            return
        msg_id = message_id(payload)
        if msg_id in self._seen:
            self.stats["gossip_duplicate"] += 1
            known = self._seen.known_by(msg_id)
            known.add(peer)
            if any(p not in known for p in self._sessions):  # peers that connected since
                await self._fan_out(msg_id, encode_frame(payload), exclude=peer)
            return
        content_id = message_id(bytes([int(kind)]) + body)
        if self.config.replay_window > 0 and content_id in self._recent_content:
            self.stats["gossip_replay"] += 1  # the same content again, too soon: not news
            return
        threshold = self.config.idontwant_min_bytes
        if threshold and len(body) >= threshold:
            self._announce_dontwant(msg_id, peer)
        verdict = await self._validate(kind, body, peer)
        if verdict is ValidationResult.REJECT:
            self.stats["gossip_rejected"] += 1
            self._punish(peer, Offense.INVALID)
            return
        if verdict is ValidationResult.IGNORE:
            self.stats["gossip_ignored"] += 1
            return
        if not self._seen.add(msg_id):  # the same message was accepted meanwhile
            self.stats["gossip_duplicate"] += 1
            return
        if self.config.replay_window > 0 and not self._recent_content.add(content_id):
            self.stats["gossip_replay"] += 1
            return
        self.stats["gossip_accepted"] += 1
        self.stats["gossip_relayed"] += await self._fan_out(
            msg_id, encode_frame(payload), exclude=peer
        )
        await self._deliver(GossipMessage(kind, body, peer))

    def _on_dontwant(self, peer: ID, body: bytes) -> None:
        """Remember that `peer` (on its current connection) needs no copy of message `body`."""
        if len(body) != 32:
            self._punish(peer, Offense.MALFORMED)
            return
        session = self._sessions.get(peer)
        if session is None:
            return
        self.stats["idontwant_received"] += 1
        self._dontwant.setdefault(body, set()).add((peer, session.epoch))
        self._dontwant.move_to_end(body)
        while len(self._dontwant) > DONTWANT_ENTRIES:  # a spammer only evicts hints
            self._dontwant.popitem(last=False)

    def _announce_dontwant(self, msg_id: bytes, sender: ID) -> None:
        """Tell peers that may relay this large message to us that we have it (best effort)."""
        frame = encode_frame(encode_gossip(Kind.IDONTWANT, msg_id))
        for peer, session in self._sessions.items():
            if peer == sender:
                continue
            try:
                session.send.send_nowait(frame)
                self.stats["idontwant_sent"] += 1
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                pass  # only a hint: a full queue just means a duplicate may come

    async def _deliver(self, message: GossipMessage) -> None:
        subscribers = self._subscribers.get(message.kind, [])
        for channel in list(subscribers):
            try:
                await channel.send(message)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                subscribers.remove(channel)

    # ------------------------------------------------------------------ request/response

    async def _serve(self, stream: INetStream, answer: Answer) -> None:
        if not await serve_request(stream, answer, self.config.request_timeout):
            self._punish(stream.muxed_conn.peer_id, Offense.MALFORMED)
        self.stats["requests_served"] += 1

    async def _handle_status_request(self, stream: INetStream) -> None:
        await self._serve(stream, lambda request: answer_status(self.sync_provider, request))

    async def _handle_blocks_request(self, stream: INetStream) -> None:
        await self._serve(
            stream,
            lambda request: answer_blocks(
                self.sync_provider,
                request,
                self.config.max_blocks_per_request,
                self.config.max_response_bytes,
            ),
        )

    async def _request(
        self, peer: ID, protocol: TProtocol, payload: bytes, decode: Callable[[bytes], _T]
    ) -> _T:
        """One request and its decoded answer within `request_timeout`; a peer whose answer
        does not decode is scored down."""
        try:
            answer = await send_request(
                self.host,
                peer,
                protocol,
                payload,
                self.config.request_timeout,
                self.config.max_response_bytes,
            )
            try:
                return decode(answer)
            except RemoteError as exc:
                raise RequestRefused(f"{peer} refused a {protocol} request: {exc}") from exc
            except DecodeError as exc:
                raise MalformedAnswer(f"bad {protocol} answer from {peer}: {exc}") from exc
        except MalformedAnswer:
            self._punish(peer, Offense.BAD_RESPONSE)
            raise

    async def request_status(self, peer: ID) -> ChainStatus:
        """Ask a peer for its chain status (also recorded in the peer book)."""
        status = await self._request(peer, STATUS_PROTOCOL, b"", decode_status_response)
        self._record(peer).status = status
        return status

    async def request_blocks(self, peer: ID, start: int, count: int) -> list[BlockWithCertificate]:
        """Ask a peer for up to `count` committed blocks from height `start`, with certificates.

        The answer may hold fewer (size cap, or the peer has no more); never more.
        """
        if not 0 <= start < 2**64 or not 1 <= count <= self.config.max_blocks_per_request:
            raise ValueError(
                f"count must be 1..{self.config.max_blocks_per_request} and start >= 0"
            )
        request = BlockRangeRequest(start, count).encode()
        return await self._request(
            peer, BLOCKS_PROTOCOL, request, lambda data: decode_blocks_response(data, count)
        )

    async def _handle_peers_request(self, stream: INetStream) -> None:
        await self._serve(stream, self._answer_peers)

    def _dialable_addrs(self, peer: ID) -> list[str]:
        """Addresses others may dial `peer` at: what we dialed, or what identify told us."""
        record = self._book.get(peer)
        addrs = list(record.addrs) if record is not None and record.addrs else []
        try:
            addrs += [str(a) for a in self.host.get_peerstore().addrs(peer)]
        except Exception:
            pass
        tcp = [a.split("/p2p/")[0] for a in addrs if "/tcp/" in a and "/p2p-circuit" not in a]
        return list(dict.fromkeys(tcp))[:ADDRS_PER_PEER]

    async def _answer_peers(self, request: bytes) -> bytes:
        if request:
            raise DecodeError("a peers request carries no body")
        shared = [
            peer_multiaddr(addr, peer)
            for peer in self._sessions
            for addr in self._dialable_addrs(peer)
        ]
        return encode_peers_response(shared[: self.config.max_shared_addrs])

    async def request_peers(self, peer: ID) -> list[str]:
        """Ask a peer for the addresses of its peers (`/ip4/.../tcp/.../p2p/ID` strings)."""
        limit = self.config.max_shared_addrs
        return await self._request(
            peer, PEERS_PROTOCOL, b"", lambda data: decode_peers_response(data, limit)
        )

    async def _discover(self) -> None:
        """While below `target_peers`, learn peers from connected ones and dial new ones once."""
        while True:
            await trio.sleep(self.config.discovery_interval)
            if self.peer_count >= self.config.target_peers:
                continue
            candidates: dict[ID, PeerInfo] = {}
            asked = random.sample(self.connected_peers(), min(3, self.peer_count))
            for peer in asked:
                try:
                    addrs = await self.request_peers(peer)
                except P2PError as exc:
                    log.debug("peer exchange with %s failed: %s", peer, exc)
                    continue
                for addr in addrs:
                    try:
                        info = parse_peer_addr(addr)
                    except AddressError:
                        continue
                    new = info.peer_id != self.peer_id and info.peer_id not in self._sessions
                    if new and not self.scorer.is_banned(info.peer_id):
                        known = candidates.setdefault(info.peer_id, PeerInfo(info.peer_id, []))
                        known.addrs.extend(info.addrs)
            wanted = self.config.target_peers - self.peer_count
            for info in list(candidates.values())[: max(0, wanted)]:
                try:
                    with trio.fail_after(self.config.dial_timeout):
                        await self.host.connect(info)
                    record = self._record(info.peer_id)
                    record.addrs = record.addrs or [str(a) for a in info.addrs]
                    log.info("discovered peer %s", info.peer_id)
                except Exception as exc:
                    log.debug("dialing discovered peer %s failed: %s", info.peer_id, exc)

    def best_peers(self) -> list[tuple[ID, ChainStatus]]:
        """Connected peers with a known status, highest first (for choosing a sync source)."""
        known = [
            (p, r.status)
            for p, r in self._book.items()
            if r.status is not None and p in self._sessions
        ]
        return sorted(known, key=lambda item: item[1].height, reverse=True)
