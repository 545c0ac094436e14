"""The last-signed guard, the key-value stores and the WAL encoding."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_hash.auto import keccak

from consensus.abc import DoubleSignError
from consensus.signer import PrivValidator
from consensus.state_machine import (
    DecisionReceived,
    ProposalBuilt,
    ProposalReceived,
    ProposalValidated,
    TimeoutFired,
    VoteReceived,
)
from consensus.store import ChainState, ConsensusDB, LevelDBStore, MemoryStore
from consensus.types import (
    CommitCertificate,
    Decision,
    DecodeError,
    DuplicateVoteEvidence,
    Proposal,
    Step,
    Vote,
    VoteType,
    address_from_private_key,
)
from consensus.wal import decode_event, encode_event
from tests.consensus.factories import CHAIN_ID, make_keys, make_valset, proposal, vote

KEY = make_keys(1)[0]
ME = address_from_private_key(KEY)
H1, H2 = keccak(b"1"), keccak(b"2")


def unsigned(height: int, round_: int, vt: VoteType, h: bytes | None) -> Vote:
    return Vote(CHAIN_ID, height, round_, vt, h, ME)


def test_guard_survives_restart_and_refuses_conflicts(tmp_path: Path) -> None:
    path = tmp_path / "priv_validator_state.json"
    signer = PrivValidator(KEY, path)
    first = signer.sign_vote(unsigned(5, 1, VoteType.PREVOTE, H1))
    first.verify()
    assert path.stat().st_mode & 0o777 == 0o600
    restarted = PrivValidator(KEY, path)
    # same payload again: the same signature, not a new one
    assert restarted.sign_vote(unsigned(5, 1, VoteType.PREVOTE, H1)).signature == first.signature
    with pytest.raises(DoubleSignError):
        restarted.sign_vote(unsigned(5, 1, VoteType.PREVOTE, H2))
    with pytest.raises(DoubleSignError):
        restarted.sign_vote(unsigned(5, 1, VoteType.PREVOTE, None))
    with pytest.raises(DoubleSignError):
        restarted.sign_vote(unsigned(5, 0, VoteType.PRECOMMIT, H1))  # lower round
    with pytest.raises(DoubleSignError):
        restarted.sign_proposal(Proposal(CHAIN_ID, 5, 1, -1, H1, b"x", ME))  # lower step
    restarted.sign_vote(unsigned(5, 1, VoteType.PRECOMMIT, H1)).verify()
    restarted.sign_proposal(Proposal(CHAIN_ID, 5, 2, -1, H2, b"y", ME)).verify()
    assert PrivValidator(KEY, path).last_signed.step == int(Step.PROPOSE)


def test_signer_refuses_other_validators_and_test_switch_is_off_by_default() -> None:
    signer = PrivValidator(KEY)
    other = address_from_private_key(bytes(31) + b"\x42")
    with pytest.raises(ValueError):
        signer.sign_vote(Vote(CHAIN_ID, 1, 0, VoteType.PREVOTE, H1, other))
    assert not signer.double_sign_for_tests
    with pytest.raises(DoubleSignError):
        signer.sign_conflicting_vote_for_tests(unsigned(1, 0, VoteType.PREVOTE, H2))
    cheat = PrivValidator(KEY, double_sign_for_tests=True)
    cheat.sign_vote(unsigned(1, 0, VoteType.PREVOTE, H1))
    cheat.sign_conflicting_vote_for_tests(unsigned(1, 0, VoteType.PREVOTE, H2)).verify()


def test_corrupt_signer_state_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt signer state"):
        PrivValidator(KEY, path)


@pytest.fixture(params=["memory", "leveldb"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "memory":
        s = MemoryStore()
        yield s
    else:
        s = LevelDBStore.open(tmp_path / "db")
        yield s
        s.close()


def test_store_batches_and_prefix_iteration(store: MemoryStore | LevelDBStore) -> None:
    store.write_batch([(b"a/2", b"two"), (b"a/1", b"one"), (b"b/1", b"x")])
    assert store.get(b"a/1") == b"one" and store.get(b"zz") is None
    assert list(store.iterate(b"a/")) == [(b"a/1", b"one"), (b"a/2", b"two")]
    store.write_batch([(b"a/3", b"three")], [b"a/1"])
    assert [k for k, _ in store.iterate(b"a/")] == [b"a/2", b"a/3"]
    store.delete(b"a/2")
    store.put(b"a/3", b"THREE", sync=False)
    assert list(store.iterate(b"a/")) == [(b"a/3", b"THREE")]
    store.write_batch([(b"c/1", b"unsynced")], sync=False)
    assert store.get(b"c/1") == b"unsynced"


def test_consensus_db_layout(store: MemoryStore | LevelDBStore) -> None:
    keys = make_keys(4)
    vset = make_valset(keys)
    db = ConsensusDB(store)
    assert db.load_state() is None
    state = ChainState(CHAIN_ID, 3, H1, vset, vset.increment(1))
    db.save_state(state, extra_puts=[ConsensusDB.valset_entry(4, vset)])
    assert db.load_state() == state and db.load_valset(4) == vset
    cert = CommitCertificate.from_votes([vote(k, 3, 0, VoteType.PRECOMMIT, H1) for k in keys])
    decision = Decision(proposal(keys[0], 3, 0, b"blk", H1), cert)
    db.save_decision(decision)
    assert db.load_decision(3) == decision and db.load_decision(4) is None
    for seq in range(3):
        db.wal_append(3, seq, b"h3-%d" % seq)
    db.wal_append(4, 0, b"h4")
    assert db.wal_entries(3) == [b"h3-0", b"h3-1", b"h3-2"]
    assert len(db.wal_keys_below(4)) == 3
    ev = DuplicateVoteEvidence.create(
        vote(keys[1], 3, 0, VoteType.PREVOTE, H1), vote(keys[1], 3, 0, VoteType.PREVOTE, H2)
    )
    db.add_pending_evidence(ev)
    assert db.pending_evidence() == [ev]
    puts, deletes = ConsensusDB.evidence_committed_entries([ev], 4)
    store.write_batch(puts, deletes)
    assert db.pending_evidence() == [] and db.is_evidence_committed(ev.hash())


def test_corrupt_state_is_a_clear_error() -> None:
    store = MemoryStore()
    store.put(b"cs/state", b"\x01\x02")
    with pytest.raises(DecodeError, match="corrupt consensus state"):
        ConsensusDB(store).load_state()


def test_wal_events_round_trip() -> None:
    keys = make_keys(4)
    p = proposal(keys[0], 2, 1, b"blk", H1, pol_round=0)
    ev = DuplicateVoteEvidence.create(
        vote(keys[1], 2, 0, VoteType.PREVOTE, H1), vote(keys[1], 2, 0, VoteType.PREVOTE, H2)
    )
    cert = CommitCertificate.from_votes([vote(k, 2, 1, VoteType.PRECOMMIT, H1) for k in keys])
    events = [
        ProposalReceived(p),
        VoteReceived(vote(keys[2], 2, 1, VoteType.PRECOMMIT, None)),
        TimeoutFired(Step.PREVOTE, 2, 7),
        ProposalValidated(1, H1, False),
        ProposalValidated(1, H1, True),
        ProposalBuilt(3, b"block", H2, (ev,)),
        DecisionReceived(Decision(p, cert)),
    ]
    for e in events:
        assert decode_event(encode_event(e)) == e
    for bad in (b"", b"\x63", b"\x03\xc0", b"\x01garbage"):
        with pytest.raises(DecodeError):
            decode_event(bad)
