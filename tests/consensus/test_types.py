"""Encode/decode round trips, signature verification and tamper detection of consensus types."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
import rlp
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from consensus.types import (
    CommitCertificate,
    Decision,
    DecodeError,
    DuplicateVoteEvidence,
    Proposal,
    Validator,
    ValidatorSet,
    ValidatorUpdate,
    VerificationError,
    Vote,
    VoteType,
    address_from_private_key,
    decode_message,
    encode_message,
    rlp_encode,
)
from tests.consensus.factories import CHAIN_ID, make_keys, make_valset, proposal, vote

H1 = keccak(b"block-1")
H2 = keccak(b"block-2")


def test_address_matches_eth_keys() -> None:
    from eth_keys import keys as eth_keys_mod

    secret = make_keys(1)[0]
    expected = eth_keys_mod.PrivateKey(secret).public_key.to_canonical_address()
    assert address_from_private_key(secret) == expected


def test_vote_round_trip_and_verify() -> None:
    key = make_keys(1)[0]
    for block_hash in (H1, None):
        v = vote(key, 5, 2, VoteType.PRECOMMIT, block_hash)
        back = Vote.decode(v.encode())
        assert back == v
        back.verify()
        assert decode_message(encode_message(v)) == v


@pytest.mark.parametrize(
    "change",
    [
        {"height": 6},
        {"round": 3},
        {"vote_type": VoteType.PREVOTE},
        {"block_hash": H2},
        {"block_hash": None},
        {"chain_id": CHAIN_ID + 1},
    ],
)
def test_vote_tamper_is_detected(change: dict[str, object]) -> None:
    key = make_keys(1)[0]
    v = vote(key, 5, 2, VoteType.PRECOMMIT, H1)
    with pytest.raises(VerificationError):
        replace(v, **change).verify()  # type: ignore[arg-type]


def test_vote_by_other_key_is_rejected() -> None:
    k1, k2 = make_keys(2)
    v = vote(k1, 1, 0, VoteType.PREVOTE, H1)
    forged = replace(v, validator=address_from_private_key(k2))
    with pytest.raises(VerificationError):
        forged.verify()
    with pytest.raises(ValueError):
        Vote(CHAIN_ID, 1, 0, VoteType.PREVOTE, H1, address_from_private_key(k2)).signed(k1)


def test_proposal_round_trip_binds_block_and_evidence() -> None:
    k1, k2 = make_keys(2)
    ev = DuplicateVoteEvidence.create(
        vote(k2, 3, 0, VoteType.PREVOTE, H1), vote(k2, 3, 0, VoteType.PREVOTE, H2)
    )
    p = replace(
        Proposal(CHAIN_ID, 4, 1, 0, H1, b"payload", address_from_private_key(k1), (ev,)),
    ).signed(k1)
    back = Proposal.decode(p.encode())
    assert back == p
    back.verify()
    with pytest.raises(VerificationError):
        replace(p, block=b"other payload").verify()
    with pytest.raises(VerificationError):
        replace(p, evidence=()).verify()
    with pytest.raises(VerificationError):
        replace(p, pol_round=-1).verify()


def test_proposal_rejects_bad_pol_round() -> None:
    k1 = make_keys(1)[0]
    with pytest.raises(ValueError):
        Proposal(CHAIN_ID, 1, 1, 1, H1, b"", address_from_private_key(k1))
    with pytest.raises(ValueError):
        Proposal(CHAIN_ID, 1, 0, 0, H1, b"", address_from_private_key(k1))


def test_commit_certificate_quorum_and_tamper() -> None:
    keys = make_keys(4)
    vset = make_valset(keys)
    votes = [vote(k, 9, 1, VoteType.PRECOMMIT, H1) for k in keys[:3]]
    cert = CommitCertificate.from_votes(votes)
    back = CommitCertificate.decode(cert.encode())
    assert back == cert
    back.verify(CHAIN_ID, vset)
    with pytest.raises(VerificationError, match="below quorum"):
        CommitCertificate.from_votes(votes[:2]).verify(CHAIN_ID, vset)
    with pytest.raises(VerificationError):
        replace(cert, block_hash=H2).verify(CHAIN_ID, vset)
    with pytest.raises(VerificationError):
        replace(cert, round=2).verify(CHAIN_ID, vset)
    with pytest.raises(VerificationError, match="another chain"):
        cert.verify(CHAIN_ID + 1, vset)
    dup = replace(cert, signatures=(*cert.signatures[:2], cert.signatures[0]))
    with pytest.raises(VerificationError, match="twice"):
        dup.verify(CHAIN_ID, vset)
    stranger = vote(bytes(31) + b"\x63", 9, 1, VoteType.PRECOMMIT, H1)
    with pytest.raises(VerificationError, match="not in the validator set"):
        CommitCertificate.from_votes([*votes, stranger]).verify(CHAIN_ID, vset)


def test_certificate_is_stake_weighted() -> None:
    keys = make_keys(4)
    vset = make_valset(keys, [70, 10, 10, 10])
    heavy = next(k for k in keys if vset.power_of(address_from_private_key(k)) == 70)
    CommitCertificate.from_votes([vote(heavy, 1, 0, VoteType.PRECOMMIT, H1)]).verify(CHAIN_ID, vset)
    light = [k for k in keys if k != heavy]
    with pytest.raises(VerificationError):
        CommitCertificate.from_votes([vote(k, 1, 0, VoteType.PRECOMMIT, H1) for k in light]).verify(
            CHAIN_ID, vset
        )


def test_duplicate_vote_evidence() -> None:
    keys = make_keys(4)
    vset = make_valset(keys)
    a = vote(keys[1], 3, 0, VoteType.PREVOTE, H1)
    b = vote(keys[1], 3, 0, VoteType.PREVOTE, H2)
    ev = DuplicateVoteEvidence.create(a, b)
    assert ev == DuplicateVoteEvidence.create(b, a)  # canonical order
    assert DuplicateVoteEvidence.decode(ev.encode()) == ev
    ev.verify(CHAIN_ID, vset)
    assert ev.validator == address_from_private_key(keys[1])
    with pytest.raises(VerificationError):
        DuplicateVoteEvidence.create(a, a)
    with pytest.raises(VerificationError):
        DuplicateVoteEvidence.create(a, vote(keys[1], 3, 1, VoteType.PREVOTE, H2))
    with pytest.raises(VerificationError):
        DuplicateVoteEvidence.create(a, vote(keys[2], 3, 0, VoteType.PREVOTE, H2))
    forged = DuplicateVoteEvidence(ev.vote_a, replace(ev.vote_b, signature=ev.vote_a.signature))
    with pytest.raises(VerificationError):
        forged.verify(CHAIN_ID, vset)
    other_set = make_valset([keys[0], keys[2]])
    with pytest.raises(VerificationError, match="outside"):
        ev.verify(CHAIN_ID, other_set)


def test_decision_round_trip() -> None:
    keys = make_keys(4)
    vset = make_valset(keys)
    p = proposal(keys[0], 2, 0, b"blk", H1)
    cert = CommitCertificate.from_votes([vote(k, 2, 0, VoteType.PRECOMMIT, H1) for k in keys])
    d = Decision(p, cert)
    back = decode_message(encode_message(d))
    assert back == d
    assert isinstance(back, Decision)
    back.verify(CHAIN_ID, vset)
    with pytest.raises(ValueError):
        Decision(proposal(keys[0], 2, 0, b"blk", H2), cert)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x09abc", b"\x01", b"\x01\xc0", b"\x02\xff\xff", b"\x01" + b"\xc7" + b"\x01" * 7],
)
def test_garbage_raises_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(data)


def test_truncated_or_extended_messages_raise_decode_error() -> None:
    key = make_keys(1)[0]
    raw = encode_message(vote(key, 1, 0, VoteType.PREVOTE, H1))
    for cut in (1, 5, len(raw) - 1):
        with pytest.raises(DecodeError):
            decode_message(raw[:cut])
    with pytest.raises(DecodeError):
        decode_message(raw + b"\x00")


def test_proposer_rotation_is_weighted_and_deterministic() -> None:
    keys = make_keys(3)
    vset = make_valset(keys, [1, 2, 3])
    counts: Counter[bytes] = Counter()
    s = vset
    for _ in range(600):
        counts[s.proposer.address] += 1
        s = s.increment(1)
    by_power = {vset.power_of(a): c for a, c in counts.items()}
    assert by_power == {1: 100, 2: 200, 3: 300}
    assert vset.proposer_for_round(5) == vset.increment(5).proposer.address
    assert make_valset(keys, [1, 2, 3]) == vset


def test_equal_power_round_robin_visits_everyone() -> None:
    keys = make_keys(4)
    vset = make_valset(keys)
    seen = [vset.proposer_for_round(r) for r in range(4)]
    assert sorted(seen) == sorted(v.address for v in vset.validators)


def test_validator_set_updates_and_quorum() -> None:
    keys = make_keys(5)
    vset = make_valset(keys[:4])
    assert vset.total_power == 40 and vset.quorum_power == 27 and vset.one_third_power == 14
    newcomer = address_from_private_key(keys[4])
    added = vset.apply_updates([ValidatorUpdate(newcomer, 10)])
    assert len(added) == 5 and added.power_of(newcomer) == 10
    # a newcomer starts behind everyone, so it is not the next proposer
    assert added.increment(1).proposer.address != newcomer
    removed = added.apply_updates([ValidatorUpdate(vset.validators[0].address, 0)])
    assert vset.validators[0].address not in removed
    with pytest.raises(ValueError):
        vset.apply_updates([ValidatorUpdate(newcomer, 0)])
    with pytest.raises(ValueError):
        make_valset(keys[:1]).apply_updates([ValidatorUpdate(address_from_private_key(keys[0]), 0)])
    assert ValidatorSet.decode(added.encode()) == added


def test_validator_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        Validator(b"\x01" * 19, 1)
    with pytest.raises(ValueError):
        Validator(b"\x01" * 20, 0)
    with pytest.raises(DecodeError):
        ValidatorSet.decode(b"\xc0")


rlp_items = st.recursive(
    st.binary(max_size=80) | st.integers(min_value=0, max_value=2**300),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


@given(rlp_items)
def test_rlp_encode_matches_the_rlp_package(item: object) -> None:
    assert rlp_encode(item) == rlp.encode(item)


def test_rlp_encode_rejects_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError):
        rlp_encode(-1)
    with pytest.raises(TypeError):
        rlp_encode("text")


def _valid_samples() -> list[bytes]:
    keys = make_keys(4)
    p = proposal(keys[0], 2, 1, b"blk", H1, pol_round=0)
    cert = CommitCertificate.from_votes([vote(k, 2, 1, VoteType.PRECOMMIT, H1) for k in keys])
    ev = DuplicateVoteEvidence.create(
        vote(keys[1], 2, 0, VoteType.PREVOTE, H1), vote(keys[1], 2, 0, VoteType.PREVOTE, H2)
    )
    return [encode_message(m) for m in (p, cert.votes()[0], ev, Decision(p, cert))]


SAMPLES = _valid_samples()


@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4),
    st.integers(min_value=0),
)
def test_mutated_messages_decode_or_raise_decode_error(
    raw: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(raw)
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[: len(data) - cut % 8]
    try:
        message = decode_message(bytes(data))
    except DecodeError:
        return
    try:
        if isinstance(message, Decision):
            message.proposal.verify()
        elif isinstance(message, DuplicateVoteEvidence):
            message.vote_a.verify()
        else:
            message.verify()
    except VerificationError:
        pass


@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        decode_message(data)
    except DecodeError:
        pass
