"""Four validators running the real driver over an in-memory network, under trio's MockClock."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing
from eth_hash.auto import keccak

from consensus.driver import ConsensusDriver, DriverConfig
from consensus.signer import PrivValidator
from consensus.store import ConsensusDB, LevelDBStore, MemoryStore
from consensus.types import (
    Validator,
    ValidatorSet,
    VoteType,
    address_from_private_key,
    encode_message,
)
from tests.consensus.cluster import Cluster
from tests.consensus.factories import vote
from tests.consensus.kvapp import KVApp


def same_prefix(cluster: Cluster, nodes: list[int]) -> int:
    """Assert the nodes finalized the same blocks (up to the shortest) and return that length."""
    chains = [cluster.hashes(i) for i in nodes]
    n = min(len(c) for c in chains)
    for c in chains[1:]:
        assert c[:n] == chains[0][:n]
    return n


async def test_four_validators_decide_the_same_blocks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        for node in cluster.nodes:
            node.app.submit(b"colour=blue")
        with trio.fail_after(60):
            await cluster.wait_height(5)
        cluster.stop_all()
    assert same_prefix(cluster, [0, 1, 2, 3]) >= 5
    for node in cluster.nodes:
        assert node.app.state[b"colour"] == b"blue"
        assert [f.height for f in node.app.finalized] == list(range(1, len(node.app.finalized) + 1))
    # every height's decision is stored with a certificate that verifies against its set
    store = cluster.nodes[0].history[-1].db
    for h in range(1, 6):
        decision = store.load_decision(h)
        vset = store.load_valset(h)
        assert decision is not None and vset is not None
        decision.verify(cluster.config.chain_id, vset)
    # proposers rotate: with equal power, four consecutive heights have four proposers
    proposers = [store.load_decision(h).proposal.proposer for h in range(1, 5)]  # type: ignore[union-attr]
    assert len(set(proposers)) == 4


async def test_one_validator_down_the_rest_finalize(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        cluster.stop(3)
        with trio.fail_after(120):
            await cluster.wait_height(6, [0, 1, 2])
        cluster.stop_all()
    assert cluster.nodes[3].app.height == 0
    assert same_prefix(cluster, [0, 1, 2]) >= 6


async def test_two_of_four_down_halts_then_resumes(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        with trio.fail_after(60):
            await cluster.wait_height(2)
        cluster.stop(2)
        cluster.stop(3)
        before = [n.app.height for n in cluster.nodes[:2]]
        await trio.sleep(30)  # many rounds of timeouts
        after = [n.app.height for n in cluster.nodes[:2]]
        # a height in flight when the two stopped may still complete; nothing after that
        assert max(after) <= max(before) + 1
        stuck = max(after)
        await trio.sleep(30)
        assert max(n.app.height for n in cluster.nodes[:2]) == stuck
        await cluster.start(2)  # a validator returns (same store: it restarts and replays)
        with trio.fail_after(300):
            await cluster.wait_height(stuck + 3, [0, 1, 2])
        cluster.stop_all()
    assert same_prefix(cluster, [0, 1, 2]) >= stuck + 3


async def voted_at_height_3(cluster: Cluster, i: int) -> None:
    while True:
        driver = cluster.nodes[i].driver
        sm = driver.round_state if driver is not None else None
        if sm is not None and sm.height == 3 and sm.own_votes(sm.round):
            return
        await trio.sleep(0.05)


async def test_restart_mid_height_replays_the_wal_and_signs_nothing_new(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, state_dir=tmp_path)
        await cluster.start_all()
        with trio.fail_after(60):
            await cluster.wait_height(2)
        cluster.stop(2)  # without 2 and 3, height 3 cannot be decided: 0 votes and waits
        cluster.stop(3)
        with trio.fail_after(60):
            await voted_at_height_3(cluster, 0)
        cluster.stop(0)
        signed_before = PrivValidator(cluster.nodes[0].key, tmp_path / "v0.json").last_signed
        cluster.network.set_online("v0", False)
        await cluster.start(0)  # offline restart: only its own WAL can rebuild its state
        cluster.network.set_online("v0", False)
        driver = cluster.nodes[0].driver
        assert driver is not None and driver.wal_replayed > 0
        sm = driver.round_state
        assert sm is not None and sm.height == 3
        assert sm.own_votes(signed_before.round)  # its votes are back, from the WAL
        await trio.sleep(0)
        after = PrivValidator(cluster.nodes[0].key, tmp_path / "v0.json").last_signed
        assert after.signature == signed_before.signature or (
            (after.height, after.round, after.step)
            > (signed_before.height, signed_before.round, signed_before.step)
        )
        cluster.network.set_online("v0", True)
        await cluster.start(2)
        await cluster.start(3)
        with trio.fail_after(300):
            await cluster.wait_height(5)
        cluster.stop_all()
    assert same_prefix(cluster, [0, 1, 2, 3]) >= 5


async def test_single_validator_chain_finalizes(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, n=1)
        await cluster.start_all()
        cluster.nodes[0].app.submit(b"a=1")
        with trio.fail_after(30):
            await cluster.wait_height(3)
        cluster.stop_all()
    assert cluster.nodes[0].app.state[b"a"] == b"1"


async def test_application_behind_the_store_is_replayed_on_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, n=1)
        await cluster.start_all()
        cluster.nodes[0].app.submit(b"a=1")
        with trio.fail_after(30):
            await cluster.wait_height(3)
        cluster.stop(0)
        old = cluster.nodes[0].app
        cluster.nodes[0].app = KVApp(old.genesis_validators)  # lost its last blocks
        await cluster.start(0)
        assert cluster.nodes[0].app.height >= old.height
        assert [f.block_hash for f in cluster.nodes[0].app.finalized][: old.height] == [
            f.block_hash for f in old.finalized
        ]
        assert cluster.nodes[0].app.state[b"a"] == b"1"
        cluster.stop_all()


async def test_restarted_validator_catches_up_and_never_double_signs(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, state_dir=tmp_path)
        await cluster.start_all()
        with trio.fail_after(60):
            await cluster.wait_height(2)
        cluster.stop(1)
        with trio.fail_after(120):
            await cluster.wait_height(6, [0, 2, 3])
        await cluster.start(1)  # restart from its store and signer state file
        with trio.fail_after(300):
            await cluster.wait_height(8)
        cluster.stop_all()
    assert same_prefix(cluster, [0, 1, 2, 3]) >= 8
    assert (tmp_path / "v1.json").exists()
    for node in cluster.nodes:
        assert node.app.slashed == []  # nobody equivocated, the restart included


async def test_double_signer_is_caught_and_evidence_lands_in_a_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, double_signer=2)
        await cluster.start_all()
        culprit = cluster.nodes[2].address
        with trio.fail_after(120):
            while not all(culprit in n.app.slashed for n in cluster.nodes):
                await trio.sleep(0.5)
        cluster.stop_all()
    assert same_prefix(cluster, [0, 1, 2, 3]) >= 1
    for node in cluster.nodes:
        with_ev = [f for f in node.app.finalized if f.evidence]
        assert with_ev, "evidence was handed to the application in finalize_block"
        ev = with_ev[0].evidence[0]
        assert ev.validator == culprit
        vset = node.history[-1].db.load_valset(ev.height)
        assert isinstance(vset, ValidatorSet)
        ev.verify(cluster.config.chain_id, vset)
        assert node.app.state[b"slashed:" + culprit.hex().encode()]
    # the same misbehaviour is not committed twice
    hashes = [e.hash() for f in cluster.nodes[0].app.finalized for e in f.evidence]
    assert len(hashes) == len(set(hashes))


async def test_lossy_gossip_still_finalizes(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, drop_rate=0.3)
        await cluster.start_all()
        with trio.fail_after(300):
            await cluster.wait_height(4)
        cluster.stop_all()
    assert cluster.network.dropped > 0
    assert same_prefix(cluster, [0, 1, 2, 3]) >= 4


@pytest.mark.parametrize("height", [3])
async def test_validator_set_update_takes_effect_at_height_plus_two(
    autojump_clock: trio.testing.MockClock, height: int
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        leaving = cluster.nodes[3].address
        with trio.fail_after(60):
            await cluster.wait_height(1)
        for node in cluster.nodes:
            node.app.submit(b"val:" + leaving.hex().encode() + b"=0")
        with trio.fail_after(120):
            await cluster.wait_height(8, [0, 1, 2])
        cluster.stop_all()
    db = cluster.nodes[0].history[-1].db
    removed_at = next(
        f.height
        for f in cluster.nodes[0].app.finalized
        if any(t.startswith(b"val:") for t in f.txs)
    )
    assert leaving in db.load_valset(removed_at + 1)  # type: ignore[operator]
    assert leaving not in db.load_valset(removed_at + 2)  # type: ignore[operator]
    for h in range(removed_at + 2, 9):
        cert = db.load_decision(h).certificate  # type: ignore[union-attr]
        assert leaving not in {s.validator for s in cert.signatures}


async def test_fresh_follower_syncs_by_submitted_decisions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        with trio.fail_after(60):
            await cluster.wait_height(5)
        cluster.stop_all()
        source = cluster.nodes[0].history[-1].db
        app = KVApp(cluster.nodes[0].app.genesis_validators)
        follower = ConsensusDriver(
            app,
            cluster.network.endpoint("follower"),
            ConsensusDB(MemoryStore()),
            None,
            cluster.config,
        )
        await nursery.start(follower.run)
        first = source.load_decision(1)
        assert first is not None
        cert = first.certificate
        forged = replace(first, certificate=replace(cert, signatures=cert.signatures[:2]))
        assert not follower.relay_ok(forged)
        await follower.submit(forged)  # two of four signatures: below quorum
        await trio.sleep(5)
        assert follower.height == 0 and app.height == 0
        with trio.fail_after(60):
            for h in range(1, 6):
                decision = source.load_decision(h)
                assert decision is not None
                await follower.submit(decision)
                await follower.wait_for_height(h)
        nursery.cancel_scope.cancel()
    assert [f.block_hash for f in app.finalized] == cluster.hashes(0)[:5]


async def test_relay_checks(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        with trio.fail_after(60):
            await cluster.wait_height(2)
        cluster.stop_all()
        driver = cluster.nodes[0].history[-1]
        h = driver.height + 1
        member, stranger = cluster.nodes[1].key, bytes(31) + b"\x77"
        good = vote(member, h, 0, VoteType.PREVOTE, None)
        assert driver.relay_ok(good)
        assert not driver.relay_ok(vote(stranger, h, 0, VoteType.PREVOTE, None))
        assert not driver.relay_ok(replace(good, round=1))  # signature no longer matches
        assert not driver.relay_ok(vote(member, h + 5, 0, VoteType.PREVOTE, None))
        assert not driver.relay_ok(vote(member, h, 0, VoteType.PREVOTE, None, chain_id=1))
        decision = driver.db.load_decision(1)
        assert decision is not None and driver.relay_ok(decision)


async def test_missing_proposer_costs_one_propose_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        genesis = ValidatorSet.create(cluster.nodes[0].app.genesis_validators)
        absent = next(
            i for i, n in enumerate(cluster.nodes) if n.address == genesis.proposer.address
        )
        t0 = trio.current_time()
        for i in range(4):
            if i != absent:
                await cluster.start(i)
        live = [i for i in range(4) if i != absent]
        with trio.fail_after(60):
            await cluster.wait_height(1, live)
        elapsed = trio.current_time() - t0
        cluster.stop_all()
    # round 0 times out after `propose` (1.0 s); round 1 has a live proposer and is instant
    assert cluster.config.timeouts.propose <= elapsed < cluster.config.timeouts.propose + 1.0
    decision = cluster.nodes[live[0]].history[-1].db.load_decision(1)
    assert decision is not None and decision.certificate.round == 1


async def test_leveldb_backed_validator_resumes_its_chain(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    from consensus.memory import MemoryNetwork
    from consensus.signer import PrivValidator
    from consensus.store import LevelDBStore
    from tests.consensus.cluster import FAST
    from tests.consensus.factories import CHAIN_ID, make_keys

    key = make_keys(1)[0]
    app = KVApp((Validator(address_from_private_key(key), 10),))
    config = DriverConfig(CHAIN_ID, timeouts=FAST, rebroadcast_interval=0.5)
    network = MemoryNetwork()
    hashes = []
    for target in (3, 6):
        store = LevelDBStore.open(tmp_path / "consensus.db")
        signer = PrivValidator(key, tmp_path / "signer.json")
        driver = ConsensusDriver(app, network.endpoint("solo"), ConsensusDB(store), signer, config)
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            with trio.fail_after(30):
                await driver.wait_for_height(target)
            hashes.append(driver.db.load_decision(target))
            nursery.cancel_scope.cancel()
        store.close()
    assert app.height >= 6
    reopened = ConsensusDB(LevelDBStore.open(tmp_path / "consensus.db"))
    assert reopened.load_decision(3) == hashes[0]
    assert (
        [reopened.load_decision(h).proposal.block_hash for h in range(1, 7)]
        == [  # type: ignore[union-attr]
            f.block_hash for f in app.finalized[:6]
        ]
    )
    reopened.store.close()


class CrashingApp(KVApp):
    """Dies (as a power cut would) inside finalize_block of one height, once."""

    crash_at: int = 0

    async def finalize_block(self, request):  # type: ignore[no-untyped-def]
        if request.height == self.crash_at:
            self.crash_at = 0
            raise RuntimeError("power cut")
        return await super().finalize_block(request)


async def test_crash_between_decision_and_commit_is_finished_on_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from consensus.memory import MemoryNetwork
    from tests.consensus.cluster import FAST
    from tests.consensus.factories import CHAIN_ID, make_keys

    key = make_keys(1)[0]
    app = CrashingApp((Validator(address_from_private_key(key), 10),))
    app.crash_at = 3
    store = MemoryStore()
    config = DriverConfig(CHAIN_ID, timeouts=FAST, rebroadcast_interval=0.5)
    network = MemoryNetwork()

    def new_driver() -> ConsensusDriver:
        return ConsensusDriver(
            app, network.endpoint("solo"), ConsensusDB(store), PrivValidator(key), config
        )

    crashed = False
    try:
        await new_driver().run()
    except* RuntimeError:
        crashed = True
    assert crashed and app.height == 2
    db = ConsensusDB(store)
    state = db.load_state()
    assert state is not None and state.height == 2
    stored = db.load_decision(3)
    assert stored is not None  # decided and saved before the crash
    driver = new_driver()
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        assert app.height >= 3 and app.finalized[2].block_hash == stored.proposal.block_hash
        with trio.fail_after(30):
            await driver.wait_for_height(5)
        nursery.cancel_scope.cancel()
    assert [f.height for f in app.finalized] == list(range(1, len(app.finalized) + 1))


async def test_garbage_and_tampered_messages_do_not_stop_consensus(
    autojump_clock: trio.testing.MockClock,
) -> None:
    import random

    from consensus.types import Decision, Proposal, encode_message

    rng = random.Random(5)
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery)
        await cluster.start_all()
        with trio.fail_after(60):
            await cluster.wait_height(2)
        db = cluster.nodes[0].history[-1].db
        decision = db.load_decision(2)
        assert decision is not None
        samples: list[bytes] = [encode_message(decision), encode_message(decision.proposal)]
        samples += [encode_message(v) for v in decision.certificate.votes()]

        async def spam() -> None:
            while True:
                raw = bytearray(rng.choice(samples))
                kind = rng.random()
                if kind < 0.3:
                    raw = bytearray(rng.randbytes(rng.randrange(0, 300)))
                elif kind < 0.8:
                    for _ in range(rng.randrange(1, 4)):
                        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
                else:
                    raw = raw[: rng.randrange(len(raw))]
                cluster.network.inject("spammer", bytes(raw))
                await trio.sleep(0.01)

        nursery.start_soon(spam)
        # replayed old messages and a forged decision for the next height as well
        forged = Decision(
            Proposal(
                decision.proposal.chain_id,
                3,
                0,
                -1,
                decision.proposal.block_hash,
                decision.proposal.block,
                decision.proposal.proposer,
                (),
                decision.proposal.signature,
            ),
            replace(decision.certificate, height=3),
        )
        cluster.network.inject("spammer", encode_message(forged))
        with trio.fail_after(120):
            await cluster.wait_height(6)
        nursery.cancel_scope.cancel()
    assert same_prefix(cluster, [0, 1, 2, 3]) >= 6


async def test_status_and_evidence_expiry(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, double_signer=1)
        cluster.config = replace(cluster.config, evidence_max_age=2)
        await cluster.start_all()
        with trio.fail_after(120):
            await cluster.wait_height(8)
        driver = cluster.nodes[0].driver
        assert driver is not None
        status = driver.status()
        assert status["height"] == driver.height >= 8
        assert status["validators"] == 4 and status["validator"] == cluster.nodes[0].address.hex()
        # with a max age of 2 heights, nothing older stays pending
        assert all(e.height >= driver.height + 1 - 2 for e in driver.pending_evidence())
        assert all(e.height >= driver.height + 1 - 2 for e in driver.db.pending_evidence())
        nursery.cancel_scope.cancel()


async def test_lock_survives_a_restart(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """A validator that precommitted (locked) and crashed is locked again after the restart."""
    from consensus.memory import MemoryNetwork
    from tests.consensus.cluster import FAST
    from tests.consensus.factories import CHAIN_ID, make_keys, make_valset, proposal

    keys = make_keys(4)
    vset = make_valset(keys)
    addr = {address_from_private_key(k): k for k in keys}
    proposer = addr[vset.proposer_for_round(0)]
    me = next(k for k in keys if k != proposer)
    helpers = [k for k in keys if k != me][:2]
    app = KVApp(tuple(Validator(address_from_private_key(k), 10) for k in keys))
    store = LevelDBStore.open(tmp_path / "db")
    network = MemoryNetwork()
    config = DriverConfig(CHAIN_ID, timeouts=FAST, rebroadcast_interval=0.5)

    def new_driver() -> ConsensusDriver:
        return ConsensusDriver(
            app,
            network.endpoint("me"),
            ConsensusDB(store),
            PrivValidator(me, tmp_path / "pv.json"),
            config,
        )

    block = KVApp.encode_block(
        1, 1_700_000_000, address_from_private_key(proposer), app.last_hash, [], ()
    )
    block_hash = keccak(block)
    async with trio.open_nursery() as nursery:
        driver = new_driver()
        await nursery.start(driver.run)
        network.inject("others", encode_message(proposal(proposer, 1, 0, block, block_hash)))
        for k in helpers:
            network.inject("others", encode_message(vote(k, 1, 0, VoteType.PREVOTE, block_hash)))
        await trio.sleep(0.2)
        sm = driver.round_state
        assert sm is not None and sm.locked_round == 0 and sm.round == 0
        nursery.cancel_scope.cancel()
    async with trio.open_nursery() as nursery:
        driver = new_driver()
        await nursery.start(driver.run)
        sm = driver.round_state
        assert sm is not None and driver.wal_replayed > 0
        assert sm.locked_round == 0 and sm.locked is not None and sm.locked.block_hash == block_hash
        nursery.cancel_scope.cancel()
    store.close()
