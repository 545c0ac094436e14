"""Consensus messages over real libp2p hosts through ConsensusTransport."""

from __future__ import annotations

import dataclasses

import trio

from consensus.types import (
    CommitCertificate,
    Decision,
    DuplicateVoteEvidence,
    VoteType,
    encode_message,
)
from p2p.consensus_transport import ConsensusTransport
from p2p.wire import Kind
from tests.consensus.factories import CHAIN_ID, make_keys, proposal, vote
from tests.p2p.conftest import line, make_service, mesh, running

KEYS = make_keys(4)
BLOCK_HASH = b"\x11" * 32


async def receive_all(transport: ConsensusTransport, count: int, timeout: float = 10) -> list:
    got = []
    with trio.move_on_after(timeout):
        while len(got) < count:
            got.append(await transport.receive())
    return got


async def test_every_message_type_reaches_every_validator():
    services = [make_service() for _ in range(4)]
    transports = [ConsensusTransport(s, chain_id=CHAIN_ID) for s in services]
    async with running(*services):
        await mesh(*services)
        prop = proposal(KEYS[0], 1, 0, b"block bytes", BLOCK_HASH)
        precommits = [vote(k, 1, 0, VoteType.PRECOMMIT, BLOCK_HASH) for k in KEYS]
        evidence = DuplicateVoteEvidence.create(
            vote(KEYS[1], 1, 0, VoteType.PREVOTE, BLOCK_HASH),
            vote(KEYS[1], 1, 0, VoteType.PREVOTE, b"\x22" * 32),
        )
        decision = Decision(prop, CommitCertificate.from_votes(precommits))
        messages = [prop, precommits[0], evidence, decision]
        for message in messages:
            await transports[0].broadcast(message)
        for transport in transports[1:]:
            got = await receive_all(transport, 4)
            assert sorted(map(encode_message, got)) == sorted(map(encode_message, messages))
        assert (await receive_all(transports[0], 1, timeout=0.3)) == []  # not our own back


async def test_forged_or_foreign_messages_are_not_relayed():
    a, b, c = make_service(), make_service(), make_service()
    ta, tb, tc = (ConsensusTransport(s, chain_id=CHAIN_ID) for s in (a, b, c))
    async with running(a, b, c):
        await line(a, b, c)
        good = vote(KEYS[0], 3, 0, VoteType.PREVOTE, BLOCK_HASH)
        forged = dataclasses.replace(good, block_hash=b"\x33" * 32)  # signature no longer fits
        foreign = vote(KEYS[0], 3, 0, VoteType.PREVOTE, BLOCK_HASH, chain_id=CHAIN_ID + 1)
        await a.broadcast(Kind.VOTE, encode_message(forged))
        await a.broadcast(Kind.VOTE, encode_message(foreign))
        await a.broadcast(Kind.PROPOSAL, encode_message(good))  # a vote under the wrong kind
        await a.broadcast(Kind.VOTE, b"\x01not rlp")
        await ta.broadcast(good)
        assert await receive_all(tc, 1, timeout=5) == [good]
        assert await receive_all(tc, 1, timeout=0.3) == []
        assert b.stats["gossip_rejected"] == 4
        assert b.scorer.score(a.peer_id) < 0
        assert tb is not None


async def test_burst_of_500_signed_votes_all_delivered():
    services = [make_service() for _ in range(4)]
    transports = [ConsensusTransport(s, chain_id=CHAIN_ID) for s in services]
    async with running(*services):
        await mesh(*services)
        votes = [
            vote(KEYS[i % 4], 1 + i // 8, (i // 4) % 2, VoteType.PREVOTE, BLOCK_HASH)
            for i in range(500)
        ]
        for v in votes:
            await transports[0].broadcast(v)
        for transport in transports[1:]:
            got = await receive_all(transport, 500, timeout=30)
            assert sorted(map(encode_message, got)) == sorted(map(encode_message, votes))
