"""p2p benchmark: latency and gossip throughput of 4 real libp2p hosts on 127.0.0.1.

All hosts run in one trio process (one core does the work of four nodes), so the figures are
a floor for a real multi-process network. Prints a Markdown table; results go into
docs/benchmarks/p2p.md.

    .venv/bin/python bench/bench_p2p.py [--messages 5000] [--pings 300]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import multiaddr
import trio
from libp2p import new_host
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID as GOSSIPSUB_ID
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consensus.types import Vote, VoteType, address_from_private_key
from p2p.config import P2PConfig
from p2p.consensus_transport import ConsensusTransport
from p2p.host import P2PService
from p2p.identity import NodeIdentity
from p2p.streams import FrameReader, StreamEnded
from p2p.wire import Kind, encode_frame

RAW_PROTOCOL = "/bench/raw/1.0.0"


def service(**overrides: int) -> P2PService:
    config = P2PConfig(listen_port=0, handshake=False, discovery_interval=0)
    for key, value in overrides.items():
        setattr(config, key, value)
    return P2PService(NodeIdentity.generate(), config)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def mesh(services: list[P2PService]) -> None:
    for i, left in enumerate(services):
        for right in services[i + 1 :]:
            await left.connect(right.listen_addrs[0])
    for s in services:
        await s.wait_for_peers(len(services) - 1, timeout=10)


async def raw_stream_rate(a: P2PService, b: P2PService, count: int, size: int) -> float:
    """Frames/s over one bare libp2p stream, one write per frame: the transport's ceiling."""
    done = trio.Event()
    received = 0

    async def handler(stream) -> None:  # type: ignore[no-untyped-def]
        nonlocal received
        reader = FrameReader(stream, 1 << 20)
        try:
            while received < count:
                await reader.read_frame()
                received += 1
        except StreamEnded:
            pass
        done.set()

    b.host.set_stream_handler(RAW_PROTOCOL, handler)  # type: ignore[arg-type]
    stream = await a.host.new_stream(b.peer_id, [RAW_PROTOCOL])  # type: ignore[list-item]
    frame = encode_frame(os.urandom(size))
    start = time.perf_counter()
    for _ in range(count):
        await stream.write(frame)
    await done.wait()
    elapsed = time.perf_counter() - start
    await stream.close()
    return count / elapsed


async def gossip_rate(
    sender: P2PService, receivers: list[P2PService], count: int, size: int
) -> float:
    """Messages/s from one broadcaster until every receiver has every message."""
    subs = [r.subscribe(Kind.TRANSACTION) for r in receivers]
    payloads = [i.to_bytes(4, "big") + os.urandom(size - 4) for i in range(count)]

    async def drain(sub) -> None:  # type: ignore[no-untyped-def]
        for _ in range(count):
            await sub.receive()

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for sub in subs:
            nursery.start_soon(drain, sub)
        for payload in payloads:
            await sender.broadcast(Kind.TRANSACTION, payload)
    elapsed = time.perf_counter() - start
    for sub in subs:
        sub.close()
    return count / elapsed


async def vote_rate(services: list[P2PService], count: int) -> float:
    """Signed consensus votes/s through ConsensusTransport (each receiver checks signatures)."""
    transports = [ConsensusTransport(s) for s in services]
    key = bytes(31) + b"\x07"
    validator = address_from_private_key(key)
    votes = [
        Vote(1, 1 + i, 0, VoteType.PREVOTE, os.urandom(32), validator).signed(key)
        for i in range(count)
    ]

    async def drain(t: ConsensusTransport) -> None:
        for _ in range(count):
            await t.receive()

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for t in transports[1:]:
            nursery.start_soon(drain, t)
        for v in votes:
            await transports[0].broadcast(v)
    return count / (time.perf_counter() - start)


async def ping_latency(a: P2PService, b: P2PService, pings: int) -> list[float]:
    """Round trip of a 1 KB gossip message: a sends to b, b answers with send_to."""
    sub_a, sub_b = a.subscribe(Kind.TRANSACTION), b.subscribe(Kind.TRANSACTION)

    async def echo() -> None:
        async for msg in sub_b:
            await b.send_to(a.peer_id, Kind.TRANSACTION, b"pong" + msg.data[4:])

    rtts = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        for i in range(pings):
            body = i.to_bytes(4, "big") + os.urandom(1020)
            start = time.perf_counter()
            await a.send_to(b.peer_id, Kind.TRANSACTION, b"ping" + body)
            await sub_a.receive()
            rtts.append(time.perf_counter() - start)
        nursery.cancel_scope.cancel()
    return rtts


async def status_latency(a: P2PService, b: P2PService, count: int) -> list[float]:
    from tests.p2p.conftest import MemoryChain

    b.sync_provider = MemoryChain(100)
    rtts = []
    for _ in range(count):
        start = time.perf_counter()
        await a.request_status(b.peer_id)
        rtts.append(time.perf_counter() - start)
    return rtts


async def gossipsub_burst(count: int, size: int = 1024) -> int:
    """How many of `count` back-to-back 1 KB messages py-libp2p's gossipsub delivers to one
    subscribed peer with its default flow settings (the path this layer avoids)."""
    hosts = [new_host() for _ in range(2)]
    got = 0
    listen = [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]
    async with hosts[0].run(listen), hosts[1].run(listen):
        routers = [
            GossipSub(protocols=[GOSSIPSUB_ID], degree=6, degree_low=4, degree_high=12)
            for _ in hosts
        ]
        pubsubs = [Pubsub(h, r) for h, r in zip(hosts, routers, strict=True)]
        async with (
            background_trio_service(pubsubs[0]),
            background_trio_service(routers[0]),
            background_trio_service(pubsubs[1]),
            background_trio_service(routers[1]),
        ):
            for ps in pubsubs:
                await ps.wait_until_ready()
            await hosts[0].connect(info_from_p2p_addr(hosts[1].get_addrs()[0]))
            own = await pubsubs[0].subscribe("bench")
            theirs = await pubsubs[1].subscribe("bench")
            await trio.sleep(1.5)  # let the mesh form (first heartbeat)

            async def drain(sub, count_it: bool) -> None:  # type: ignore[no-untyped-def]
                nonlocal got
                while True:
                    await sub.get()
                    got += count_it

            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain, theirs, True)
                nursery.start_soon(drain, own, False)  # a publisher receives its own messages
                for i in range(count):
                    await pubsubs[0].publish("bench", i.to_bytes(4, "big") + bytes(size - 4))
                await trio.sleep(3)
                nursery.cancel_scope.cancel()
    return got


async def our_burst(a: P2PService, b: P2PService, count: int, size: int = 1024) -> int:
    sub = b.subscribe(Kind.TRANSACTION)
    for i in range(count):
        await a.broadcast(Kind.TRANSACTION, i.to_bytes(4, "big") + os.urandom(size - 4))
    got = 0
    with trio.move_on_after(3):
        while got < count:
            await sub.receive()
            got += 1
    return got


async def block_fanout(size: int, hints: bool, blocks: int = 5) -> tuple[float, int]:
    """Median time for a `size`-byte proposal to reach 3 peers in a 4-host mesh, and the
    relays it caused, with 10 ms of validation per hop, with or without IDONTWANT hints."""
    from p2p.abc import ValidationResult

    async def validate(body: bytes, peer: object) -> ValidationResult:
        await trio.sleep(0.01)
        return ValidationResult.ACCEPT

    services = [service(idontwant_min_bytes=16 * 1024 if hints else 0) for _ in range(4)]
    times = []
    async with trio.open_nursery() as nursery:
        for s in services:
            await nursery.start(s.run)
            s.set_validator(Kind.PROPOSAL, validate)
        await mesh(services)
        subs = [s.subscribe(Kind.PROPOSAL) for s in services[1:]]
        for _ in range(blocks):
            start = time.perf_counter()
            await services[0].broadcast(Kind.PROPOSAL, os.urandom(size))
            for sub in subs:
                await sub.receive()
            times.append(time.perf_counter() - start)
            await trio.sleep(0.1)  # let relays finish before the next block
        nursery.cancel_scope.cancel()
    return statistics.median(times), sum(s.stats["gossip_relayed"] for s in services)


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)  # gossipsub logs every message it drops
    services = [service() for _ in range(4)]
    async with trio.open_nursery() as nursery:
        for s in services:
            await nursery.start(s.run)
        await mesh(services)
        a, b = services[0], services[1]
        n, size = args.messages, 1024
        raw = await raw_stream_rate(a, b, n, size)
        one_peer = await gossip_rate(a, [b], n, size)
        three_peers = await gossip_rate(a, services[1:], n, size)
        pings = await ping_latency(a, b, args.pings)
        status = await status_latency(a, b, args.pings)
        ours = await our_burst(a, b, 500)
        votes = await vote_rate(services, min(n, 2000))  # last: it installs vote validators
        nursery.cancel_scope.cancel()
    pair = [service(), service()]
    async with trio.open_nursery() as nursery:
        for s in pair:
            await nursery.start(s.run)
        await mesh(pair)
        pair_pings = await ping_latency(pair[0], pair[1], args.pings)
        nursery.cancel_scope.cancel()
    gossipsub = await gossipsub_burst(500)
    fanout = {hints: await block_fanout(1024 * 1024, hints) for hints in (False, True)}

    def ms(v: float) -> str:
        return f"{v * 1000:.2f}"

    print(f"4 hosts, one process, {n} messages of {size} B, {args.pings} round trips\n")
    print("| measure | value | ratio |")
    print("|---|---|---|")
    print(f"| raw libp2p stream, 1 KB frames, 1 receiver (ceiling) | {raw:,.0f} msg/s | 1.00 |")
    print(
        f"| gossip broadcast, 1 KB, 1 receiver | {one_peer:,.0f} msg/s | {one_peer / raw:.2f} of raw |"
    )
    print(
        f"| gossip broadcast, 1 KB, 3 receivers (full mesh, relay+dedupe) | {three_peers:,.0f} msg/s "
        f"({3 * three_peers:,.0f} deliveries/s) | {three_peers / raw:.2f} of raw |"
    )
    print(f"| burst of 500 x 1 KB, delivered: this layer | {ours} / 500 | |")
    print(f"| burst of 500 x 1 KB, delivered: py-libp2p gossipsub defaults | {gossipsub} / 500 | |")
    for hints, label in ((False, "flooding"), (True, "with IDONTWANT hints")):
        median, relays = fanout[hints]
        print(
            f"| 1 MiB proposal to 3 peers, 10 ms validation, {label} | p50 {ms(median)} ms, "
            f"{relays} relays for 5 blocks | |"
        )
    print(f"| signed votes via ConsensusTransport, 3 receivers | {votes:,.0f} votes/s | |")
    print(
        f"| gossip round trip, 1 KB, 2 hosts (no relay) | p50 {ms(statistics.median(pair_pings))} ms, "
        f"p95 {ms(pct(pair_pings, 0.95))} ms | |"
    )
    print(
        f"| gossip round trip, 1 KB, 4-host mesh (relayed to the others) | p50 {ms(statistics.median(pings))} ms, "
        f"p95 {ms(pct(pings, 0.95))} ms | |"
    )
    print(
        f"| status request/response | p50 {ms(statistics.median(status))} ms, "
        f"p95 {ms(pct(status, 0.95))} ms | |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--pings", type=int, default=300)
    trio.run(main, parser.parse_args())
