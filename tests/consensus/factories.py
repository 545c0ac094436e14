"""Keys, validator sets and signed messages for consensus tests."""

from __future__ import annotations

from consensus.types import (
    Proposal,
    Validator,
    ValidatorSet,
    Vote,
    VoteType,
    address_from_private_key,
)

CHAIN_ID = 7331


def make_keys(n: int) -> list[bytes]:
    """n deterministic secp256k1 secrets, ordered by their address."""
    keys = [bytes([0] * 31 + [i + 1]) for i in range(n)]
    return sorted(keys, key=address_from_private_key)


def make_valset(keys: list[bytes], powers: list[int] | None = None) -> ValidatorSet:
    powers = powers or [10] * len(keys)
    return ValidatorSet.create(
        Validator(address_from_private_key(k), p) for k, p in zip(keys, powers, strict=True)
    )


def vote(
    key: bytes,
    height: int,
    round_: int,
    vote_type: VoteType,
    block_hash: bytes | None,
    chain_id: int = CHAIN_ID,
) -> Vote:
    return Vote(
        chain_id, height, round_, vote_type, block_hash, address_from_private_key(key)
    ).signed(key)


def proposal(
    key: bytes,
    height: int,
    round_: int,
    block: bytes,
    block_hash: bytes,
    pol_round: int = -1,
    chain_id: int = CHAIN_ID,
) -> Proposal:
    return Proposal(
        chain_id, height, round_, pol_round, block_hash, block, address_from_private_key(key)
    ).signed(key)
