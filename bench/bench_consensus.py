"""Consensus benchmark: in-memory heights per second with 4 validators vs 1, and crypto costs.

All validators run the real driver (WAL in a MemoryStore, signer guard, evidence pool) in one
trio process on the real clock, over `consensus.memory.MemoryNetwork` (messages encoded and
decoded as on the wire), with the toy key-value application. The commit timeout is 0, so the
rate is the protocol's own cost (signing, verifying, WAL, quorum logic), not a block-time
setting. Prints a Markdown table; results go into docs/benchmarks/consensus.md.

    .venv/bin/python bench/bench_consensus.py [--heights 200] [--txs 0,200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from consensus.driver import ConsensusDriver, DriverConfig
from consensus.memory import MemoryNetwork
from consensus.signer import PrivValidator
from consensus.state_machine import TimeoutConfig
from consensus.store import ConsensusDB, LevelDBStore, MemoryStore
from consensus.types import (
    CommitCertificate,
    Proposal,
    Validator,
    Vote,
    VoteType,
    address_from_private_key,
)
from tests.consensus.kvapp import KVApp

CHAIN_ID = 7331
TIMEOUTS = TimeoutConfig(propose=5, prevote=5, precommit=5, commit=0)


def keys(n: int) -> list[bytes]:
    return [bytes(31) + bytes([i + 1]) for i in range(n)]


async def run_chain(n: int, heights: int, txs_per_block: int, leveldb: bool = False) -> float:
    """Seconds to decide `heights` heights with `n` validators (stores in memory or LevelDB)."""
    ks = keys(n)
    genesis = tuple(Validator(address_from_private_key(k), 10) for k in ks)
    network = MemoryNetwork(queue_size=100_000)
    config = DriverConfig(CHAIN_ID, timeouts=TIMEOUTS, rebroadcast_interval=5.0)
    apps = [KVApp(genesis) for _ in ks]
    for app in apps:
        for i in range(heights * txs_per_block):
            app.mempool.append(b"k%d=%d" % (i, i))
    tmp = tempfile.TemporaryDirectory()
    stores: list[MemoryStore | LevelDBStore] = [
        LevelDBStore.open(Path(tmp.name) / f"v{i}") if leveldb else MemoryStore() for i in range(n)
    ]
    drivers = [
        ConsensusDriver(
            app,
            network.endpoint(f"v{i}"),
            ConsensusDB(store),
            PrivValidator(k, Path(tmp.name) / f"v{i}.json" if leveldb else None),
            config,
        )
        for i, (app, k, store) in enumerate(zip(apps, ks, stores, strict=True))
    ]
    async with trio.open_nursery() as nursery:
        for d in drivers:
            await nursery.start(d.run)
        start = time.perf_counter()
        for d in drivers:
            await d.wait_for_height(heights)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    for store in stores:
        store.close()
    tmp.cleanup()
    first = [f.block_hash for f in apps[0].finalized[:heights]]
    assert all([f.block_hash for f in a.finalized[:heights]] == first for a in apps), "forked"
    if txs_per_block:
        assert (
            sum(len(f.txs) for f in apps[0].finalized[:heights])
            >= heights * min(txs_per_block, 100) * 0.9
        )
    return elapsed


async def run_libp2p(heights: int) -> float:
    """Seconds for 4 validators to decide `heights` heights over real libp2p hosts on
    127.0.0.1 (p2p's ConsensusTransport), all in this one process."""
    from p2p.config import P2PConfig
    from p2p.consensus_transport import ConsensusTransport
    from p2p.host import P2PService
    from p2p.identity import NodeIdentity

    ks = keys(4)
    genesis = tuple(Validator(address_from_private_key(k), 10) for k in ks)
    services = [
        P2PService(NodeIdentity.generate(), P2PConfig(listen_port=0, handshake=False)) for _ in ks
    ]
    transports = [ConsensusTransport(s, CHAIN_ID) for s in services]
    apps = [KVApp(genesis) for _ in ks]
    config = DriverConfig(CHAIN_ID, timeouts=TIMEOUTS, rebroadcast_interval=5.0)
    drivers = [
        ConsensusDriver(app, t, ConsensusDB(MemoryStore()), PrivValidator(k), config)
        for app, t, k in zip(apps, transports, ks, strict=True)
    ]
    async with trio.open_nursery() as nursery:
        for s in services:
            await nursery.start(s.run)
        for i, s in enumerate(services):
            for j in range(i):
                await s.connect(services[j].listen_addrs[0])
        for d in drivers:
            await nursery.start(d.run)
        await drivers[0].wait_for_height(2)  # warm up the connections
        start = time.perf_counter()
        for d in drivers:
            await d.wait_for_height(heights + 2)
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    first = [f.block_hash for f in apps[0].finalized[: heights + 2]]
    assert all([f.block_hash for f in a.finalized[: heights + 2]] == first for a in apps)
    return elapsed


def per_op(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def crypto_costs() -> list[tuple[str, float]]:
    k = keys(100)
    vote = Vote(CHAIN_ID, 1, 0, VoteType.PRECOMMIT, b"\x11" * 32, address_from_private_key(k[0]))
    signed = vote.signed(k[0])
    from consensus.types import ValidatorSet

    rows = [
        ("sign a vote", per_op(lambda: vote.signed(k[0]), 2000)),
        ("verify a vote (recover)", per_op(signed.verify, 2000)),
        ("encode + decode a vote", per_op(lambda: Vote.decode(signed.encode()), 5000)),
    ]
    for n in (4, 100):
        vset = ValidatorSet.create(Validator(address_from_private_key(x), 10) for x in k[:n])
        cert = CommitCertificate.from_votes(
            [
                Vote(
                    CHAIN_ID, 1, 0, VoteType.PRECOMMIT, b"\x11" * 32, address_from_private_key(x)
                ).signed(x)
                for x in k[:n]
            ]
        )
        rows.append(
            (
                f"verify a certificate, {n} validators",
                per_op(lambda c=cert, v=vset: c.verify(CHAIN_ID, v), 50),
            )
        )
    block = bytes(1_000_000)
    prop = Proposal(CHAIN_ID, 1, 0, -1, b"\x22" * 32, block, address_from_private_key(k[0])).signed(
        k[0]
    )
    rows.append(("verify a proposal with a 1 MB block", per_op(prop.verify, 50)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heights", type=int, default=200)
    parser.add_argument("--txs", default="0,100", help="kv transactions per block, comma separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tx_counts = [int(x) for x in args.txs.split(",")]

    print(
        "| store | validators | txs/block | heights | median s | best s | heights/s (median) "
        "| ms/height | ms per node-height |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    rates: dict[tuple[str, int, int], float] = {}
    for store in ("memory", "leveldb"):
        for txs in tx_counts:
            for n in (1, 4):
                times = [
                    trio.run(run_chain, n, args.heights, txs, store == "leveldb")
                    for _ in range(args.runs)
                ]
                med = statistics.median(times)
                rates[(store, n, txs)] = args.heights / med
                ms = 1000 * med / args.heights
                print(
                    f"| {store} | {n} | {txs} | {args.heights} | {med:.3f} | {min(times):.3f} "
                    f"| {args.heights / med:,.0f} | {ms:.2f} | {ms / n:.2f} |"
                )
    print()
    for store in ("memory", "leveldb"):
        for txs in tx_counts:
            ratio = rates[(store, 4, txs)] / rates[(store, 1, txs)]
            print(
                f"{store}, {txs} txs/block: 4-validator / 1-validator rate {ratio:.2f} "
                f"(the 4 nodes share one process; per node {4 * ratio:.2f})"
            )
    print()
    lib = [trio.run(run_libp2p, args.heights // 2) for _ in range(args.runs)]
    med = statistics.median(lib)
    print(
        f"libp2p, 4 validators in one process, {args.heights // 2} empty heights: median "
        f"{med:.3f} s, {1000 * med / (args.heights // 2):.1f} ms/height"
    )
    print()
    print("| operation | µs |")
    print("|---|---|")
    for name, seconds in crypto_costs():
        print(f"| {name} | {seconds * 1e6:,.1f} |")


if __name__ == "__main__":
    main()
