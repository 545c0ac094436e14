"""Pure consensus data: validators, votes, proposals, commit certificates, evidence.

Every message type has `encode() -> bytes` and `decode(bytes)` (RLP) so the p2p layer can put
it on the wire and the store can save it; nothing here does I/O. Signatures are recoverable
secp256k1 (coincurve) over keccak256 of a domain-separated encoding that names the chain id,
height, round and message type, so no signature replays across chains, heights or steps.
A validator's identity is its Ethereum-style address (last 20 bytes of keccak of the public key).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeAlias

import rlp
from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

ADDRESS_SIZE = 20
HASH_SIZE = 32
SIGNATURE_SIZE = 65

# Domain prefixes: a vote signature can never be taken for a proposal signature and vice versa.
VOTE_DOMAIN = b"openledger/consensus/vote/v1"
PROPOSAL_DOMAIN = b"openledger/consensus/proposal/v1"

# Bounds that keep a decoded message from asking for absurd amounts of memory or work.
MAX_ROUND = 1_000_000
MAX_EVIDENCE_PER_BLOCK = 64
MAX_COMMIT_SIGNATURES = 10_000


class DecodeError(ValueError):
    """Bytes that do not decode to a well-formed consensus message."""


class VerificationError(ValueError):
    """A signature, quorum or evidence check failed."""


class VoteType(enum.IntEnum):
    """Vote types; the values are part of the signed encoding."""

    PREVOTE = 1
    PRECOMMIT = 2


class Step(enum.IntEnum):
    """Round steps in signing order (used by the last-signed guard)."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


def step_of(vote_type: VoteType) -> Step:
    """The round step at which a vote of this type is signed."""
    return Step.PREVOTE if vote_type is VoteType.PREVOTE else Step.PRECOMMIT


# --- keys and addresses -------------------------------------------------------------------


def address_from_public_key(public_key: PublicKey) -> bytes:
    """Ethereum address of a secp256k1 public key: keccak(uncompressed point)[-20:]."""
    return bytes(keccak(public_key.format(compressed=False)[1:])[-ADDRESS_SIZE:])


def address_from_private_key(private_key: bytes) -> bytes:
    """Ethereum address of a 32-byte secp256k1 secret."""
    return address_from_public_key(PrivateKey(private_key).public_key)


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """65-byte recoverable signature (r || s || recovery id) of a 32-byte digest."""
    return bytes(PrivateKey(private_key).sign_recoverable(digest, hasher=None))


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """Address that produced `signature` over `digest`; raises VerificationError if malformed."""
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError(f"signature must be {SIGNATURE_SIZE} bytes, got {len(signature)}")
    try:
        public_key = PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception as exc:  # coincurve raises ValueError/Exception variants
        raise VerificationError(f"unrecoverable signature: {exc}") from exc
    return address_from_public_key(public_key)


# --- RLP ----------------------------------------------------------------------------------


def rlp_encode(item: Any) -> bytes:
    """RLP of nested lists of bytes and non-negative ints; same bytes as `rlp.encode`.

    The rlp package infers a sedes for every item, which made encoding the largest cost of a
    consensus round; votes and proposals only ever hold bytes, ints and lists.
    """
    if isinstance(item, bytes | bytearray):
        if len(item) == 1 and item[0] < 0x80:
            return bytes(item)
        return _length_prefix(len(item), 0x80) + bytes(item)
    if isinstance(item, int) and not isinstance(item, bool):
        if item < 0:
            raise ValueError("RLP cannot encode negative integers")
        return rlp_encode(item.to_bytes((item.bit_length() + 7) // 8, "big"))
    if isinstance(item, list | tuple):
        payload = b"".join(rlp_encode(x) for x in item)
        return _length_prefix(len(payload), 0xC0) + payload
    raise TypeError(f"cannot RLP-encode {type(item).__name__}")


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(encoded)]) + encoded


# --- RLP field helpers --------------------------------------------------------------------


def _int(item: Any, name: str, *, maximum: int | None = None) -> int:
    if not isinstance(item, bytes):
        raise DecodeError(f"{name}: expected an integer, got a list")
    if item[:1] == b"\x00":
        raise DecodeError(f"{name}: integer has leading zero bytes")
    value = int.from_bytes(item, "big")
    if maximum is not None and value > maximum:
        raise DecodeError(f"{name}: {value} exceeds {maximum}")
    return value


def _bytes(item: Any, name: str, *, sizes: tuple[int, ...] | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise DecodeError(f"{name}: expected bytes, got a list")
    if sizes is not None and len(item) not in sizes:
        raise DecodeError(f"{name}: length {len(item)} not in {sizes}")
    return item


def _list(item: Any, name: str, length: int | None = None) -> list[Any]:
    if not isinstance(item, list):
        raise DecodeError(f"{name}: expected a list")
    if length is not None and len(item) != length:
        raise DecodeError(f"{name}: expected {length} fields, got {len(item)}")
    return item


def _rlp_decode(data: bytes, name: str) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"{name}: expected bytes")
    try:
        return rlp.decode(bytes(data))
    except Exception as exc:  # rlp raises several DecodingError subclasses
        raise DecodeError(f"{name}: invalid RLP: {exc}") from exc


def _check_hash(value: bytes | None, name: str) -> None:
    if value is not None and len(value) != HASH_SIZE:
        raise ValueError(f"{name} must be {HASH_SIZE} bytes or None, got {len(value)}")


def _check_address(value: bytes, name: str = "address") -> None:
    if len(value) != ADDRESS_SIZE:
        raise ValueError(f"{name} must be {ADDRESS_SIZE} bytes, got {len(value)}")


# --- validators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Validator:
    """A validator: its address, voting power and (consensus-internal) proposer priority."""

    address: bytes
    voting_power: int
    proposer_priority: int = 0

    def __post_init__(self) -> None:
        _check_address(self.address)
        if self.voting_power <= 0:
            raise ValueError(f"voting power must be positive, got {self.voting_power}")

    def to_rlp(self) -> list[Any]:
        # Priorities may be negative: store them offset-free as sign + magnitude.
        prio = self.proposer_priority
        return [self.address, self.voting_power, 1 if prio < 0 else 0, abs(prio)]

    @classmethod
    def from_rlp(cls, item: Any) -> Validator:
        fields = _list(item, "validator", 4)
        negative = _int(fields[2], "priority sign", maximum=1)
        magnitude = _int(fields[3], "priority")
        try:
            return cls(
                address=_bytes(fields[0], "address", sizes=(ADDRESS_SIZE,)),
                voting_power=_int(fields[1], "voting power"),
                proposer_priority=-magnitude if negative else magnitude,
            )
        except ValueError as exc:
            raise DecodeError(str(exc)) from exc


@dataclass(frozen=True)
class ValidatorUpdate:
    """A change to the validator set returned by the application; power 0 removes."""

    address: bytes
    voting_power: int

    def __post_init__(self) -> None:
        _check_address(self.address)
        if self.voting_power < 0:
            raise ValueError(f"voting power must be >= 0, got {self.voting_power}")


# CometBFT's bound on total power keeps priority arithmetic small; Python ints do not overflow,
# but the bound keeps the rescaling behaviour the same as CometBFT's.
MAX_TOTAL_VOTING_POWER = (1 << 63) // 8
PRIORITY_WINDOW_SIZE_FACTOR = 2


@dataclass(frozen=True)
class ValidatorSet:
    """An immutable, address-sorted validator set with CometBFT's weighted round-robin proposer.

    `proposer` is the validator with the highest priority (ties: lowest address). Each
    `increment(times)` adds every validator's power to its priority, picks the proposer and
    subtracts the total power from it, so over many rounds each validator proposes in proportion
    to its power. New validators start at -1.125 * total power so joining never jumps the queue.
    """

    validators: tuple[Validator, ...]
    proposer_address: bytes | None = None  # set by increment(); None only before the first

    def __post_init__(self) -> None:
        if self.proposer_address is not None and self.get(self.proposer_address) is None:
            raise ValueError("proposer is not in the validator set")
        if not self.validators:
            raise ValueError("a validator set needs at least one validator")
        addresses = [v.address for v in self.validators]
        if addresses != sorted(addresses):
            raise ValueError("validators must be sorted by address (use ValidatorSet.create)")
        if len(set(addresses)) != len(addresses):
            raise ValueError("duplicate validator address")
        if self.total_power > MAX_TOTAL_VOTING_POWER:
            raise ValueError("total voting power too large")

    @classmethod
    def create(cls, validators: Iterable[Validator]) -> ValidatorSet:
        """A fresh set (priorities reset) that has already chosen its first proposer."""
        fresh = tuple(
            sorted(
                (Validator(v.address, v.voting_power, 0) for v in validators),
                key=lambda v: v.address,
            )
        )
        return cls(fresh).increment(1)

    @property
    def total_power(self) -> int:
        return sum(v.voting_power for v in self.validators)

    @property
    def quorum_power(self) -> int:
        """Smallest power that is more than 2/3 of the total."""
        return self.total_power * 2 // 3 + 1

    @property
    def one_third_power(self) -> int:
        """Smallest power that is more than 1/3 of the total (f + 1)."""
        return self.total_power // 3 + 1

    def __len__(self) -> int:
        return len(self.validators)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, bytes) and self.get(address) is not None

    def get(self, address: bytes) -> Validator | None:
        for v in self.validators:
            if v.address == address:
                return v
        return None

    def power_of(self, address: bytes) -> int:
        v = self.get(address)
        return 0 if v is None else v.voting_power

    @property
    def proposer(self) -> Validator:
        """The proposer chosen by the last increment (for round 0 of this set's height)."""
        if self.proposer_address is None:
            return self.increment(1).proposer
        found = self.get(self.proposer_address)
        assert found is not None  # checked in __post_init__
        return found

    def proposer_for_round(self, round_: int) -> bytes:
        """Address of the proposer of `round_` of the height this set is for."""
        return self.increment(round_).proposer.address if round_ else self.proposer.address

    def increment(self, times: int) -> ValidatorSet:
        """The set after `times` proposer rotations (CometBFT IncrementProposerPriority)."""
        if times < 0:
            raise ValueError("times must be >= 0")
        if times == 0:
            return self
        total = self.total_power
        prios = self._rescaled_and_centered(PRIORITY_WINDOW_SIZE_FACTOR * total)
        powers = [v.voting_power for v in self.validators]
        best = 0
        for _ in range(times):
            prios = [p + w for p, w in zip(prios, powers, strict=True)]
            best = max(
                range(len(prios)), key=lambda i: (prios[i], _neg_bytes(self.validators[i].address))
            )
            prios[best] -= total
        return ValidatorSet(
            tuple(
                replace(v, proposer_priority=p) for v, p in zip(self.validators, prios, strict=True)
            ),
            self.validators[best].address,
        )

    def _rescaled_and_centered(self, diff_max: int) -> list[int]:
        prios = [v.proposer_priority for v in self.validators]
        spread = max(prios) - min(prios)
        if diff_max > 0 and spread > diff_max:
            ratio = -(-spread // diff_max)  # ceil
            prios = [_div_trunc(p, ratio) for p in prios]
        avg = _div_floor(sum(prios), len(prios))
        return [p - avg for p in prios]

    def apply_updates(self, updates: Sequence[ValidatorUpdate]) -> ValidatorSet:
        """The set with `updates` applied (power 0 removes); priorities carried over."""
        seen: set[bytes] = set()
        for u in updates:
            if u.address in seen:
                raise ValueError(f"duplicate update for {u.address.hex()}")
            seen.add(u.address)
        by_addr = {v.address: v for v in self.validators}
        new_addrs = [u for u in updates if u.address not in by_addr and u.voting_power > 0]
        for u in updates:
            if u.voting_power == 0:
                if u.address not in by_addr:
                    raise ValueError(f"cannot remove unknown validator {u.address.hex()}")
                del by_addr[u.address]
            elif u.address in by_addr:
                by_addr[u.address] = replace(by_addr[u.address], voting_power=u.voting_power)
        if not by_addr and not new_addrs:
            raise ValueError("updates would remove every validator")
        new_total = sum(v.voting_power for v in by_addr.values()) + sum(
            u.voting_power for u in new_addrs
        )
        start = -(new_total + (new_total >> 3))
        for u in new_addrs:
            by_addr[u.address] = Validator(u.address, u.voting_power, start)
        updated = ValidatorSet(tuple(sorted(by_addr.values(), key=lambda v: v.address)))
        prios = updated._rescaled_and_centered(PRIORITY_WINDOW_SIZE_FACTOR * new_total)
        # The proposer is chosen again by the increment that precedes the set's first use.
        return ValidatorSet(
            tuple(
                replace(v, proposer_priority=p)
                for v, p in zip(updated.validators, prios, strict=True)
            )
        )

    def hash(self) -> bytes:
        """Hash of addresses and powers (not priorities): identifies the membership."""
        return bytes(keccak(rlp_encode([[v.address, v.voting_power] for v in self.validators])))

    def encode(self) -> bytes:
        return bytes(
            rlp_encode([[v.to_rlp() for v in self.validators], self.proposer_address or b""])
        )

    @classmethod
    def decode(cls, data: bytes) -> ValidatorSet:
        outer = _list(_rlp_decode(data, "validator set"), "validator set", 2)
        items = _list(outer[0], "validators")
        proposer = _bytes(outer[1], "proposer", sizes=(0, ADDRESS_SIZE))
        try:
            return cls(tuple(Validator.from_rlp(i) for i in items), proposer or None)
        except DecodeError:
            raise
        except ValueError as exc:
            raise DecodeError(str(exc)) from exc


def _neg_bytes(b: bytes) -> bytes:
    """Key that makes max() prefer the lowest address on ties."""
    return bytes(255 - x for x in b)


def _div_trunc(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _div_floor(a: int, b: int) -> int:
    return a // b


# --- votes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vote:
    """A signed prevote or precommit; `block_hash` None is a vote for nil."""

    chain_id: int
    height: int
    round: int
    vote_type: VoteType
    block_hash: bytes | None
    validator: bytes
    signature: bytes = b""

    TAG: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _check_hash(self.block_hash, "block_hash")
        _check_address(self.validator, "validator")
        if self.height < 1 or self.round < 0 or self.chain_id < 0:
            raise ValueError("height must be >= 1, round and chain id >= 0")

    def sign_bytes(self) -> bytes:
        """The domain-separated encoding a validator signs (no validator or signature in it)."""
        return VOTE_DOMAIN + rlp_encode(
            [self.chain_id, self.height, self.round, int(self.vote_type), self.block_hash or b""]
        )

    def digest(self) -> bytes:
        return bytes(keccak(self.sign_bytes()))

    def signed(self, private_key: bytes) -> Vote:
        """This vote signed with `private_key` (which must belong to `validator`)."""
        if address_from_private_key(private_key) != self.validator:
            raise ValueError("private key does not belong to the vote's validator")
        return replace(self, signature=sign_digest(private_key, self.digest()))

    def verify(self) -> None:
        """Raise VerificationError unless `signature` is the validator's over this vote."""
        if recover_address(self.digest(), self.signature) != self.validator:
            raise VerificationError("vote signature does not match its validator")

    def to_rlp(self) -> list[Any]:
        return [
            self.chain_id,
            self.height,
            self.round,
            int(self.vote_type),
            self.block_hash or b"",
            self.validator,
            self.signature,
        ]

    @classmethod
    def from_rlp(cls, item: Any) -> Vote:
        f = _list(item, "vote", 7)
        vtype = _int(f[3], "vote type")
        if vtype not in (1, 2):
            raise DecodeError(f"unknown vote type {vtype}")
        block_hash = _bytes(f[4], "block hash", sizes=(0, HASH_SIZE))
        try:
            return cls(
                chain_id=_int(f[0], "chain id"),
                height=_int(f[1], "height"),
                round=_int(f[2], "round", maximum=MAX_ROUND),
                vote_type=VoteType(vtype),
                block_hash=block_hash or None,
                validator=_bytes(f[5], "validator", sizes=(ADDRESS_SIZE,)),
                signature=_bytes(f[6], "signature", sizes=(SIGNATURE_SIZE,)),
            )
        except ValueError as exc:
            raise DecodeError(str(exc)) from exc

    def encode(self) -> bytes:
        return bytes(rlp_encode(self.to_rlp()))

    @classmethod
    def decode(cls, data: bytes) -> Vote:
        return cls.from_rlp(_rlp_decode(data, "vote"))


# --- evidence -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateVoteEvidence:
    """Two votes by one validator for the same height, round and type but different blocks.

    Stored in canonical order (vote_a's block hash sorts first, nil first) so that the same
    misbehaviour always encodes and hashes the same, whichever vote was seen first.
    """

    vote_a: Vote
    vote_b: Vote

    TAG: ClassVar[int] = 3

    @classmethod
    def create(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        a, b = sorted((first, second), key=lambda v: v.block_hash or b"")
        ev = cls(a, b)
        ev.check_shape()
        return ev

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    def check_shape(self) -> None:
        """Raise VerificationError unless the votes conflict (signatures not checked)."""
        a, b = self.vote_a, self.vote_b
        if (a.chain_id, a.height, a.round, a.vote_type, a.validator) != (
            b.chain_id,
            b.height,
            b.round,
            b.vote_type,
            b.validator,
        ):
            raise VerificationError(
                "evidence votes differ in chain, height, round, type or validator"
            )
        if a.block_hash == b.block_hash:
            raise VerificationError("evidence votes are for the same block")
        if (a.block_hash or b"") > (b.block_hash or b""):
            raise VerificationError("evidence votes are not in canonical order")

    def verify(self, chain_id: int, validators: ValidatorSet) -> None:
        """Raise VerificationError unless this is real double signing by a member of `validators`."""
        self.check_shape()
        if self.vote_a.chain_id != chain_id:
            raise VerificationError("evidence is for another chain")
        if self.validator not in validators:
            raise VerificationError("evidence names a validator outside the set")
        self.vote_a.verify()
        self.vote_b.verify()

    def hash(self) -> bytes:
        return bytes(keccak(self.encode()))

    def to_rlp(self) -> list[Any]:
        return [self.vote_a.to_rlp(), self.vote_b.to_rlp()]

    @classmethod
    def from_rlp(cls, item: Any) -> DuplicateVoteEvidence:
        f = _list(item, "evidence", 2)
        ev = cls(Vote.from_rlp(f[0]), Vote.from_rlp(f[1]))
        try:
            ev.check_shape()
        except VerificationError as exc:
            raise DecodeError(str(exc)) from exc
        return ev

    def encode(self) -> bytes:
        return bytes(rlp_encode(self.to_rlp()))

    @classmethod
    def decode(cls, data: bytes) -> DuplicateVoteEvidence:
        return cls.from_rlp(_rlp_decode(data, "evidence"))


def evidence_hash(evidence: Sequence[DuplicateVoteEvidence]) -> bytes:
    """Hash of an evidence list; an application commits to it inside its block."""
    return bytes(keccak(rlp_encode([e.to_rlp() for e in evidence])))


# --- proposals ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A proposer's signed block for (height, round); pol_round -1 means no proof of lock.

    `block` is opaque application bytes and `block_hash` the application's hash of it (the
    Ethereum header hash); votes are on `block_hash`. The signature also covers keccak(block)
    and the evidence list, so nobody can swap the payload under a valid signature.
    """

    chain_id: int
    height: int
    round: int
    pol_round: int
    block_hash: bytes
    block: bytes
    proposer: bytes
    evidence: tuple[DuplicateVoteEvidence, ...] = ()
    signature: bytes = b""

    TAG: ClassVar[int] = 2

    def __post_init__(self) -> None:
        _check_hash(self.block_hash, "block_hash")
        _check_address(self.proposer, "proposer")
        if self.height < 1 or self.round < 0 or self.chain_id < 0:
            raise ValueError("height must be >= 1, round and chain id >= 0")
        if not -1 <= self.pol_round < self.round or (self.round == 0 and self.pol_round != -1):
            raise ValueError(f"pol_round {self.pol_round} must be -1 or in [0, round)")
        if len(self.evidence) > MAX_EVIDENCE_PER_BLOCK:
            raise ValueError("too much evidence in one proposal")

    def sign_bytes(self) -> bytes:
        return PROPOSAL_DOMAIN + rlp_encode(
            [
                self.chain_id,
                self.height,
                self.round,
                self.pol_round + 1,
                self.block_hash,
                keccak(self.block),
                evidence_hash(self.evidence),
            ]
        )

    def digest(self) -> bytes:
        return bytes(keccak(self.sign_bytes()))

    def signed(self, private_key: bytes) -> Proposal:
        if address_from_private_key(private_key) != self.proposer:
            raise ValueError("private key does not belong to the proposer")
        return replace(self, signature=sign_digest(private_key, self.digest()))

    def verify(self) -> None:
        """Raise VerificationError unless the proposer signed exactly this proposal."""
        if recover_address(self.digest(), self.signature) != self.proposer:
            raise VerificationError("proposal signature does not match its proposer")

    def to_rlp(self) -> list[Any]:
        return [
            self.chain_id,
            self.height,
            self.round,
            self.pol_round + 1,
            self.block_hash,
            self.block,
            self.proposer,
            [e.to_rlp() for e in self.evidence],
            self.signature,
        ]

    @classmethod
    def from_rlp(cls, item: Any) -> Proposal:
        f = _list(item, "proposal", 9)
        evidence = _list(f[7], "proposal evidence")
        if len(evidence) > MAX_EVIDENCE_PER_BLOCK:
            raise DecodeError("too much evidence in one proposal")
        try:
            return cls(
                chain_id=_int(f[0], "chain id"),
                height=_int(f[1], "height"),
                round=_int(f[2], "round", maximum=MAX_ROUND),
                pol_round=_int(f[3], "pol round", maximum=MAX_ROUND) - 1,
                block_hash=_bytes(f[4], "block hash", sizes=(HASH_SIZE,)),
                block=_bytes(f[5], "block"),
                proposer=_bytes(f[6], "proposer", sizes=(ADDRESS_SIZE,)),
                evidence=tuple(DuplicateVoteEvidence.from_rlp(e) for e in evidence),
                signature=_bytes(f[8], "signature", sizes=(SIGNATURE_SIZE,)),
            )
        except DecodeError:
            raise
        except ValueError as exc:
            raise DecodeError(str(exc)) from exc

    def encode(self) -> bytes:
        return bytes(rlp_encode(self.to_rlp()))

    @classmethod
    def decode(cls, data: bytes) -> Proposal:
        return cls.from_rlp(_rlp_decode(data, "proposal"))


# --- commit certificates ------------------------------------------------------------------


@dataclass(frozen=True)
class CommitSignature:
    """One validator's precommit signature inside a certificate."""

    validator: bytes
    signature: bytes


@dataclass(frozen=True)
class CommitCertificate:
    """Precommits of more than 2/3 of the voting power for one block at (height, round)."""

    chain_id: int
    height: int
    round: int
    block_hash: bytes
    signatures: tuple[CommitSignature, ...] = field(default_factory=tuple)

    TAG: ClassVar[int] = 4

    def __post_init__(self) -> None:
        _check_hash(self.block_hash, "block_hash")
        if self.height < 1 or self.round < 0:
            raise ValueError("height must be >= 1 and round >= 0")

    @classmethod
    def from_votes(cls, votes: Iterable[Vote]) -> CommitCertificate:
        """Build a certificate from precommits for one block (sorted by validator)."""
        vs = sorted(votes, key=lambda v: v.validator)
        if not vs:
            raise ValueError("a certificate needs at least one precommit")
        first = vs[0]
        for v in vs:
            if (v.chain_id, v.height, v.round, v.vote_type, v.block_hash) != (
                first.chain_id,
                first.height,
                first.round,
                VoteType.PRECOMMIT,
                first.block_hash,
            ):
                raise ValueError("certificate votes must be precommits for one block")
        if first.block_hash is None:
            raise ValueError("a certificate cannot certify nil")
        return cls(
            first.chain_id,
            first.height,
            first.round,
            first.block_hash,
            tuple(CommitSignature(v.validator, v.signature) for v in vs),
        )

    def votes(self) -> tuple[Vote, ...]:
        """The precommits this certificate carries, as Vote objects."""
        return tuple(
            Vote(
                self.chain_id,
                self.height,
                self.round,
                VoteType.PRECOMMIT,
                self.block_hash,
                s.validator,
                s.signature,
            )
            for s in self.signatures
        )

    def verify(self, chain_id: int, validators: ValidatorSet) -> None:
        """Raise VerificationError unless >2/3 of `validators`' power signed this block."""
        if self.chain_id != chain_id:
            raise VerificationError("certificate is for another chain")
        seen: set[bytes] = set()
        power = 0
        for vote in self.votes():
            if vote.validator in seen:
                raise VerificationError("certificate lists a validator twice")
            seen.add(vote.validator)
            weight = validators.power_of(vote.validator)
            if weight == 0:
                raise VerificationError("certificate signer is not in the validator set")
            vote.verify()
            power += weight
        if power < validators.quorum_power:
            raise VerificationError(
                f"certificate power {power} below quorum {validators.quorum_power}"
            )

    def to_rlp(self) -> list[Any]:
        return [
            self.chain_id,
            self.height,
            self.round,
            self.block_hash,
            [[s.validator, s.signature] for s in self.signatures],
        ]

    @classmethod
    def from_rlp(cls, item: Any) -> CommitCertificate:
        f = _list(item, "certificate", 5)
        sigs = _list(f[4], "certificate signatures")
        if len(sigs) > MAX_COMMIT_SIGNATURES:
            raise DecodeError("too many signatures in a certificate")
        parsed = []
        for s in sigs:
            pair = _list(s, "commit signature", 2)
            parsed.append(
                CommitSignature(
                    _bytes(pair[0], "validator", sizes=(ADDRESS_SIZE,)),
                    _bytes(pair[1], "signature", sizes=(SIGNATURE_SIZE,)),
                )
            )
        try:
            return cls(
                chain_id=_int(f[0], "chain id"),
                height=_int(f[1], "height"),
                round=_int(f[2], "round", maximum=MAX_ROUND),
                block_hash=_bytes(f[3], "block hash", sizes=(HASH_SIZE,)),
                signatures=tuple(parsed),
            )
        except ValueError as exc:
            raise DecodeError(str(exc)) from exc

    def encode(self) -> bytes:
        return bytes(rlp_encode(self.to_rlp()))

    @classmethod
    def decode(cls, data: bytes) -> CommitCertificate:
        return cls.from_rlp(_rlp_decode(data, "certificate"))


@dataclass(frozen=True)
class Decision:
    """A decided block: the proposal that carried it and the certificate that committed it.

    What the consensus store keeps per height, what a node gossips to a peer that is a height
    behind (catch-up), and what block sync can serve: verify the certificate against the
    height's validator set, check `proposal.block_hash == certificate.block_hash`, then execute.
    """

    proposal: Proposal
    certificate: CommitCertificate

    TAG: ClassVar[int] = 5

    def __post_init__(self) -> None:
        if self.proposal.block_hash != self.certificate.block_hash:
            raise ValueError("decision proposal and certificate name different blocks")
        if self.proposal.height != self.certificate.height:
            raise ValueError("decision proposal and certificate are for different heights")

    @property
    def height(self) -> int:
        return self.certificate.height

    def verify(self, chain_id: int, validators: ValidatorSet) -> None:
        """Raise VerificationError unless the certificate commits this proposal's block.

        The proposal's own signature is checked too (the certificate is what makes it final;
        the signature binds the block bytes and evidence to the certified hash).
        """
        if self.proposal.chain_id != chain_id:
            raise VerificationError("decision is for another chain")
        self.certificate.verify(chain_id, validators)
        self.proposal.verify()

    def to_rlp(self) -> list[Any]:
        return [self.proposal.to_rlp(), self.certificate.to_rlp()]

    @classmethod
    def from_rlp(cls, item: Any) -> Decision:
        f = _list(item, "decision", 2)
        try:
            return cls(Proposal.from_rlp(f[0]), CommitCertificate.from_rlp(f[1]))
        except DecodeError:
            raise
        except ValueError as exc:
            raise DecodeError(str(exc)) from exc

    def encode(self) -> bytes:
        return bytes(rlp_encode(self.to_rlp()))

    @classmethod
    def decode(cls, data: bytes) -> Decision:
        return cls.from_rlp(_rlp_decode(data, "decision"))


# --- wire envelope ------------------------------------------------------------------------

ConsensusMessage: TypeAlias = Proposal | Vote | DuplicateVoteEvidence | Decision
"""What consensus sends and receives through a TransportAPI."""

_MESSAGE_TYPES: dict[int, Any] = {
    Vote.TAG: Vote,
    Proposal.TAG: Proposal,
    DuplicateVoteEvidence.TAG: DuplicateVoteEvidence,
    Decision.TAG: Decision,
}


def encode_message(message: ConsensusMessage) -> bytes:
    """One tag byte (1 vote, 2 proposal, 3 evidence, 5 decision) then the message's encoding."""
    return bytes([message.TAG]) + message.encode()


def decode_message(data: bytes) -> ConsensusMessage:
    """Inverse of encode_message; raises DecodeError on anything malformed."""
    if not data:
        raise DecodeError("empty consensus message")
    cls = _MESSAGE_TYPES.get(data[0])
    if cls is None:
        raise DecodeError(f"unknown consensus message tag {data[0]}")
    message: ConsensusMessage = cls.decode(data[1:])
    return message
