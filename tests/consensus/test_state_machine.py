"""Pure tests of the Tendermint state machine: no I/O, no clock, just events in, actions out."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak

from consensus.state_machine import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    HeightStateMachine,
    ProposalBuilt,
    ProposalReceived,
    ProposalValidated,
    RecordEvidence,
    RequestProposal,
    ScheduleTimeout,
    TimeoutConfig,
    TimeoutFired,
    ValidateProposal,
    VoteReceived,
)
from consensus.types import (
    Step,
    ValidatorSet,
    VoteType,
    address_from_private_key,
)
from tests.consensus.factories import CHAIN_ID, make_keys, make_valset, proposal, vote

KEYS = make_keys(4)
VSET = make_valset(KEYS)
ADDR = {address_from_private_key(k): k for k in KEYS}
TIMEOUTS = TimeoutConfig(
    propose=3, propose_delta=1, prevote=1, prevote_delta=0.5, precommit=1, precommit_delta=0.5
)
BLOCK_A, BLOCK_B = b"block A", b"block B"
HASH_A, HASH_B = keccak(BLOCK_A), keccak(BLOCK_B)


def key_of_proposer(vset: ValidatorSet, round_: int) -> bytes:
    return ADDR[vset.proposer_for_round(round_)]


def non_proposer_key(vset: ValidatorSet, rounds: range) -> bytes:
    """A validator that proposes in none of `rounds`."""
    proposers = {vset.proposer_for_round(r) for r in rounds}
    return next(k for k in KEYS if address_from_private_key(k) not in proposers)


def of(actions: list[Action], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def machine(me_key: bytes | None, height: int = 1, vset: ValidatorSet = VSET) -> HeightStateMachine:
    me = address_from_private_key(me_key) if me_key is not None else None
    return HeightStateMachine(CHAIN_ID, height, vset, me, TIMEOUTS)


def others(me_key: bytes, n: int) -> list[bytes]:
    return [k for k in KEYS if k != me_key][:n]


def feed_votes(
    sm: HeightStateMachine, keys: list[bytes], round_: int, vt: VoteType, h: bytes | None
) -> list[Action]:
    out: list[Action] = []
    for k in keys:
        out += sm.handle(VoteReceived(vote(k, sm.height, round_, vt, h)))
    return out


def echo_own(sm: HeightStateMachine, me_key: bytes, actions: list[Action]) -> list[Action]:
    """Do what the driver does with our own BroadcastVote: sign it and feed it back."""
    out: list[Action] = []
    for a in of(actions, BroadcastVote):
        out += sm.handle(VoteReceived(vote(me_key, a.height, a.round, a.vote_type, a.block_hash)))
    return out


def receive_proposal(
    sm: HeightStateMachine, round_: int, block: bytes, pol_round: int = -1, valid: bool = True
) -> list[Action]:
    p = proposal(
        key_of_proposer(sm.validators, round_), sm.height, round_, block, keccak(block), pol_round
    )
    acts = sm.handle(ProposalReceived(p))
    if not of(acts, ValidateProposal):  # a block already judged valid is not asked again
        assert sm.valid is not None and sm.valid.block_hash == p.block_hash and valid
        return acts
    assert [a.proposal for a in of(acts, ValidateProposal)] == [p]
    return acts + sm.handle(ProposalValidated(round_, p.block_hash, valid))


def test_happy_path_decides_with_a_verifiable_certificate() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    start = sm.start()
    assert of(start, ScheduleTimeout) == [ScheduleTimeout(Step.PROPOSE, 1, 0, 3)]
    assert not of(start, RequestProposal)
    acts = receive_proposal(sm, 0, BLOCK_A)
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 0, VoteType.PREVOTE, HASH_A)]
    acts = echo_own(sm, me, acts) + feed_votes(sm, others(me, 2), 0, VoteType.PREVOTE, HASH_A)
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 0, VoteType.PRECOMMIT, HASH_A)]
    assert sm.locked is not None and sm.locked_round == 0 and sm.valid_round == 0
    acts = echo_own(sm, me, acts) + feed_votes(sm, others(me, 2), 0, VoteType.PRECOMMIT, HASH_A)
    decides = of(acts, Decide)
    assert len(decides) == 1
    decision = decides[0].decision
    assert decision.proposal.block == BLOCK_A
    decision.certificate.verify(CHAIN_ID, VSET)
    decision.verify(CHAIN_ID, VSET)
    assert sm.handle(VoteReceived(vote(others(me, 3)[2], 1, 0, VoteType.PRECOMMIT, HASH_A))) == []


def test_proposer_requests_a_block_and_proposes_it() -> None:
    me = key_of_proposer(VSET, 0)
    sm = machine(me)
    acts = sm.start()
    assert of(acts, RequestProposal) == [RequestProposal(1, 0)]
    acts = sm.handle(ProposalBuilt(0, BLOCK_A, HASH_A))
    assert of(acts, BroadcastProposal) == [BroadcastProposal(1, 0, -1, BLOCK_A, HASH_A, ())]
    # our own signed proposal comes back: no validation round trip, we prevote at once
    own = proposal(me, 1, 0, BLOCK_A, HASH_A)
    acts = sm.handle(ProposalReceived(own))
    assert not of(acts, ValidateProposal)
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 0, VoteType.PREVOTE, HASH_A)]


def test_invalid_block_gets_a_nil_prevote() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    acts = receive_proposal(sm, 0, BLOCK_A, valid=False)
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 0, VoteType.PREVOTE, None)]


def test_proposal_from_wrong_proposer_or_height_is_ignored() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    wrong = next(k for k in KEYS if address_from_private_key(k) != VSET.proposer_for_round(0))
    assert sm.handle(ProposalReceived(proposal(wrong, 1, 0, BLOCK_A, HASH_A))) == []
    right = key_of_proposer(VSET, 0)
    assert sm.handle(ProposalReceived(proposal(right, 2, 0, BLOCK_A, HASH_A))) == []
    assert sm.proposals == {}


def test_timeouts_lead_to_nil_votes_and_a_new_round_with_longer_timeouts() -> None:
    me = non_proposer_key(VSET, range(2))
    sm = machine(me)
    sm.start()
    assert sm.handle(TimeoutFired(Step.PREVOTE, 1, 0)) == []  # not in prevote step yet
    acts = sm.handle(TimeoutFired(Step.PROPOSE, 1, 0))  # L57
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 0, VoteType.PREVOTE, None)]
    # 2f+1 prevotes for different things: schedule the prevote timeout once (L34)
    acts = echo_own(sm, me, acts)
    acts += feed_votes(sm, others(me, 1), 0, VoteType.PREVOTE, HASH_A)
    acts += feed_votes(sm, others(me, 2)[1:], 0, VoteType.PREVOTE, HASH_B)
    assert of(acts, ScheduleTimeout) == [ScheduleTimeout(Step.PREVOTE, 1, 0, 1)]
    assert not of(acts, BroadcastVote)
    acts = sm.handle(TimeoutFired(Step.PREVOTE, 1, 0))  # L61
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 0, VoteType.PRECOMMIT, None)]
    acts = echo_own(sm, me, acts) + feed_votes(sm, others(me, 2), 0, VoteType.PRECOMMIT, None)
    assert of(acts, ScheduleTimeout) == [ScheduleTimeout(Step.PRECOMMIT, 1, 0, 1)]  # L47
    acts = sm.handle(TimeoutFired(Step.PRECOMMIT, 1, 0))  # L65
    assert sm.round == 1 and sm.step is Step.PROPOSE
    assert of(acts, ScheduleTimeout) == [ScheduleTimeout(Step.PROPOSE, 1, 1, 4)]
    assert sm.handle(TimeoutFired(Step.PROPOSE, 1, 0)) == []  # stale timeout


def test_nil_prevote_quorum_precommits_nil() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    acts = echo_own(sm, me, sm.handle(TimeoutFired(Step.PROPOSE, 1, 0)))
    acts += feed_votes(sm, others(me, 2), 0, VoteType.PREVOTE, None)  # L44
    assert BroadcastVote(1, 0, VoteType.PRECOMMIT, None) in of(acts, BroadcastVote)
    assert sm.locked is None


def lock_on_a_in_round_0(me: bytes) -> HeightStateMachine:
    sm = machine(me)
    sm.start()
    acts = receive_proposal(sm, 0, BLOCK_A)
    acts = echo_own(sm, me, acts) + feed_votes(sm, others(me, 2), 0, VoteType.PREVOTE, HASH_A)
    echo_own(sm, me, acts)
    assert sm.locked_round == 0
    # precommits do not reach a quorum for A: round 0 ends on the precommit timeout
    feed_votes(sm, others(me, 2), 0, VoteType.PRECOMMIT, None)
    sm.handle(TimeoutFired(Step.PRECOMMIT, 1, 0))
    assert sm.round == 1
    return sm


def test_locked_validator_prevotes_nil_for_another_block() -> None:
    me = non_proposer_key(VSET, range(3))
    sm = lock_on_a_in_round_0(me)
    acts = receive_proposal(sm, 1, BLOCK_B)
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 1, VoteType.PREVOTE, None)]


def test_locked_validator_prevotes_its_locked_block_again() -> None:
    me = non_proposer_key(VSET, range(3))
    sm = lock_on_a_in_round_0(me)
    acts = receive_proposal(sm, 1, BLOCK_A, pol_round=0)
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 1, VoteType.PREVOTE, HASH_A)]


def test_proof_of_lock_from_a_later_round_unlocks() -> None:
    me = non_proposer_key(VSET, range(3))
    sm = lock_on_a_in_round_0(me)
    # round 1: others prevote B (we are locked and prevote nil), no quorum of precommits
    acts = echo_own(sm, me, receive_proposal(sm, 1, BLOCK_B))
    acts += feed_votes(sm, others(me, 3), 1, VoteType.PREVOTE, HASH_B)
    # we saw 2f+1 prevotes for B in round 1 while in prevote step: L36 relocks on B
    assert sm.locked is not None and sm.locked.block_hash == HASH_B and sm.locked_round == 1
    feed_votes(sm, others(me, 2), 1, VoteType.PRECOMMIT, None)
    sm.handle(TimeoutFired(Step.PRECOMMIT, 1, 1))
    assert sm.round == 2
    # round 2: B re-proposed with proof of lock round 1: prevote B
    acts = receive_proposal(sm, 2, BLOCK_B, pol_round=1)
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 2, VoteType.PREVOTE, HASH_B)]


def test_pol_round_unlocks_a_validator_that_missed_the_relock() -> None:
    me = non_proposer_key(VSET, range(3))
    sm = lock_on_a_in_round_0(me)
    sm.handle(TimeoutFired(Step.PROPOSE, 1, 1))  # round 1: we saw no proposal
    # but 2f+1 prevoted B in round 1 (we learn it late)
    feed_votes(sm, others(me, 3), 1, VoteType.PREVOTE, HASH_B)
    sm.handle(TimeoutFired(Step.PREVOTE, 1, 1))
    sm.handle(TimeoutFired(Step.PRECOMMIT, 1, 1))
    assert sm.round == 2 and sm.locked_round == 0
    acts = receive_proposal(sm, 2, BLOCK_B, pol_round=1)  # L28: lockedRound 0 <= vr 1
    assert of(acts, BroadcastVote) == [BroadcastVote(1, 2, VoteType.PREVOTE, HASH_B)]
    # a proof-of-lock round without a quorum does not unlock
    sm2 = lock_on_a_in_round_0(me)
    sm2.handle(TimeoutFired(Step.PROPOSE, 1, 1))
    sm2.handle(TimeoutFired(Step.PREVOTE, 1, 1))
    sm2.handle(TimeoutFired(Step.PRECOMMIT, 1, 1))
    acts = receive_proposal(sm2, 2, BLOCK_B, pol_round=1)
    assert not of(acts, BroadcastVote)


def test_start_round_as_proposer_with_valid_value() -> None:
    me = ADDR[VSET.proposer_for_round(1)]
    sm = machine(me)
    sm.start()
    acts = receive_proposal(sm, 0, BLOCK_A)
    acts = echo_own(sm, me, acts) + feed_votes(sm, others(me, 2), 0, VoteType.PREVOTE, HASH_A)
    echo_own(sm, me, acts)
    feed_votes(sm, others(me, 2), 0, VoteType.PRECOMMIT, None)
    acts = sm.handle(TimeoutFired(Step.PRECOMMIT, 1, 0))
    assert of(acts, BroadcastProposal) == [BroadcastProposal(1, 1, 0, BLOCK_A, HASH_A, ())]
    assert not of(acts, RequestProposal)


def test_f_plus_one_votes_from_a_higher_round_skip_ahead() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    acts = feed_votes(sm, others(me, 1), 5, VoteType.PREVOTE, None)
    assert sm.round == 0  # one of four is not more than 1/3
    acts = feed_votes(sm, others(me, 2)[1:], 5, VoteType.PRECOMMIT, None)
    assert sm.round == 5
    assert ScheduleTimeout(Step.PROPOSE, 1, 5, 3 + 5) in of(acts, ScheduleTimeout)


def test_conflicting_votes_become_evidence_once_and_count_once() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    bad = others(me, 1)[0]
    feed_votes(sm, [bad], 0, VoteType.PREVOTE, HASH_A)
    acts = feed_votes(sm, [bad], 0, VoteType.PREVOTE, HASH_B)
    evidence = [a.evidence for a in of(acts, RecordEvidence)]
    assert len(evidence) == 1
    evidence[0].verify(CHAIN_ID, VSET)
    assert evidence[0].validator == address_from_private_key(bad)
    assert not of(feed_votes(sm, [bad], 0, VoteType.PREVOTE, None), RecordEvidence)
    prevotes = sm.votes(0, VoteType.PREVOTE)
    assert prevotes.power(HASH_A) == 10 and prevotes.power(HASH_B) == 0 and prevotes.total == 10
    # the same vote twice is not evidence
    assert not of(feed_votes(sm, [bad], 0, VoteType.PREVOTE, HASH_A), RecordEvidence)


def test_votes_from_outside_the_set_or_other_heights_are_ignored() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    stranger = bytes(31) + b"\x99"
    sm.handle(VoteReceived(vote(stranger, 1, 0, VoteType.PREVOTE, HASH_A)))
    sm.handle(VoteReceived(vote(KEYS[1], 2, 0, VoteType.PREVOTE, HASH_A)))
    sm.handle(VoteReceived(vote(KEYS[1], 1, 0, VoteType.PREVOTE, HASH_A, chain_id=CHAIN_ID + 1)))
    assert sm.votes(0, VoteType.PREVOTE).total == 0


def test_decides_on_late_precommits_of_an_earlier_round() -> None:
    me = non_proposer_key(VSET, range(2))
    sm = machine(me)
    sm.start()
    receive_proposal(sm, 0, BLOCK_A)
    sm.handle(TimeoutFired(Step.PREVOTE, 1, 0))
    feed_votes(sm, others(me, 2), 0, VoteType.PRECOMMIT, None)
    # move to round 1 via precommit timeout, then the real round-0 precommits for A arrive
    sm2 = machine(me)
    sm2.start()
    receive_proposal(sm2, 0, BLOCK_A)
    sm2.handle(TimeoutFired(Step.PROPOSE, 1, 1))
    feed_votes(sm2, others(me, 3), 1, VoteType.PREVOTE, None)  # skip to round 1
    assert sm2.round == 1
    acts = feed_votes(sm2, others(me, 3), 0, VoteType.PRECOMMIT, HASH_A)
    decides = of(acts, Decide)
    assert len(decides) == 1 and decides[0].decision.certificate.round == 0


def test_precommit_quorum_without_the_block_waits_for_it() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    acts = feed_votes(sm, others(me, 3), 0, VoteType.PRECOMMIT, HASH_A)
    assert not of(acts, Decide)
    acts = receive_proposal(sm, 0, BLOCK_A)
    assert len(of(acts, Decide)) == 1


def test_stake_weighted_quorum() -> None:
    vset = make_valset(KEYS, [70, 10, 10, 10])
    heavy = next(k for k in KEYS if vset.power_of(address_from_private_key(k)) == 70)
    me = next(
        k for k in KEYS if k != heavy and address_from_private_key(k) != vset.proposer_for_round(0)
    )
    sm = machine(me, vset=vset)
    sm.start()
    receive_proposal(sm, 0, BLOCK_A)
    acts = feed_votes(sm, [heavy], 0, VoteType.PRECOMMIT, HASH_A)  # 70 > 2/3 of 100
    assert len(of(acts, Decide)) == 1
    sm2 = machine(me, vset=vset)
    sm2.start()
    receive_proposal(sm2, 0, BLOCK_A)
    light = [k for k in KEYS if k not in (heavy, me)]
    assert not of(feed_votes(sm2, light, 0, VoteType.PRECOMMIT, HASH_A), Decide)


def test_follower_without_a_key_decides_but_never_votes() -> None:
    sm = machine(None)
    acts = sm.start()
    acts += receive_proposal(sm, 0, BLOCK_A)
    acts += feed_votes(sm, KEYS[:3], 0, VoteType.PREVOTE, HASH_A)
    acts += feed_votes(sm, KEYS[:3], 0, VoteType.PRECOMMIT, HASH_A)
    assert not of(acts, BroadcastVote) and not of(acts, RequestProposal)
    assert len(of(acts, Decide)) == 1


def test_misuse_raises() -> None:
    sm = machine(KEYS[0])
    with pytest.raises(RuntimeError):
        sm.handle(TimeoutFired(Step.PROPOSE, 1, 0))
    sm.start()
    with pytest.raises(RuntimeError):
        sm.start()
    with pytest.raises(ValueError):
        TimeoutConfig(propose=-1)
    with pytest.raises(ValueError):
        HeightStateMachine(CHAIN_ID, 0, VSET, None, TIMEOUTS)


def test_messages_from_absurdly_far_rounds_are_ignored() -> None:
    me = non_proposer_key(VSET, range(1))
    sm = machine(me)
    sm.start()
    far = 10**6
    feed_votes(sm, others(me, 3), far, VoteType.PREVOTE, None)
    assert sm.round == 0 and sm.votes(far, VoteType.PREVOTE).total == 0
    assert sm.handle(ProposalReceived(proposal(KEYS[0], 1, far - 1, BLOCK_A, HASH_A))) == []
