"""A private validator: a secp256k1 key plus a persisted last-signed (height, round, step).

Like CometBFT's FilePV, it signs nothing below the last (height, round, step) it signed and,
at the same (height, round, step), only the identical payload (returning the earlier
signature). The state file is replaced atomically (write, fsync, rename, fsync the folder) before a signature is
handed out, so a crash at any point and a restart can never produce two different signatures
for one step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from consensus.abc import DoubleSignError, SignerAPI
from consensus.types import (
    Proposal,
    Step,
    Vote,
    address_from_private_key,
    sign_digest,
    step_of,
)


@dataclass(frozen=True)
class LastSigned:
    height: int = 0
    round: int = 0
    step: int = 0
    sign_bytes: bytes = b""
    signature: bytes = b""

    def to_json(self) -> str:
        return json.dumps(
            {
                "height": self.height,
                "round": self.round,
                "step": self.step,
                "sign_bytes": self.sign_bytes.hex(),
                "signature": self.signature.hex(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LastSigned:
        try:
            d = json.loads(text)
            return cls(
                int(d["height"]),
                int(d["round"]),
                int(d["step"]),
                bytes.fromhex(d["sign_bytes"]),
                bytes.fromhex(d["signature"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"corrupt signer state: {exc}") from exc


class PrivValidator(SignerAPI):
    """Signs votes and proposals with the last-signed guard.

    `state_path` None keeps the guard in memory only (tests); a node always passes a path.
    `double_sign_for_tests` makes the driver sign a conflicting prevote each round: it exists
    only for the evidence end-to-end test and must never be set on a real validator.
    """

    def __init__(
        self,
        private_key: bytes,
        state_path: str | Path | None = None,
        *,
        double_sign_for_tests: bool = False,
    ) -> None:
        if len(private_key) != 32:
            raise ValueError("a validator key is 32 bytes")
        self._key = private_key
        self._address = address_from_private_key(private_key)
        self._path = Path(state_path) if state_path is not None else None
        self._double_sign = double_sign_for_tests
        self._last = LastSigned()
        if self._path is not None and self._path.exists():
            self._last = LastSigned.from_json(self._path.read_text())

    @property
    def address(self) -> bytes:
        return self._address

    @property
    def last_signed(self) -> LastSigned:
        return self._last

    @property
    def double_sign_for_tests(self) -> bool:
        return self._double_sign

    def sign_vote(self, vote: Vote) -> Vote:
        self._check_owner(vote.validator)
        sig = self._sign(
            vote.height, vote.round, step_of(vote.vote_type), vote.sign_bytes(), vote.digest()
        )
        return replace(vote, signature=sig)

    def sign_proposal(self, proposal: Proposal) -> Proposal:
        self._check_owner(proposal.proposer)
        sig = self._sign(
            proposal.height, proposal.round, Step.PROPOSE, proposal.sign_bytes(), proposal.digest()
        )
        return replace(proposal, signature=sig)

    def sign_conflicting_vote_for_tests(self, vote: Vote) -> Vote:
        if not self._double_sign:
            raise DoubleSignError("double signing is only for signers built with the test switch")
        self._check_owner(vote.validator)
        return vote.signed(self._key)

    def _check_owner(self, address: bytes) -> None:
        if address != self._address:
            raise ValueError("asked to sign for another validator")

    def _sign(
        self, height: int, round_: int, step: Step, sign_bytes: bytes, digest: bytes
    ) -> bytes:
        last = self._last
        hrs, last_hrs = (height, round_, int(step)), (last.height, last.round, last.step)
        if hrs < last_hrs:
            raise DoubleSignError(f"refusing to sign {hrs}: already signed {last_hrs}")
        if hrs == last_hrs:
            if sign_bytes == last.sign_bytes:
                return last.signature
            raise DoubleSignError(f"refusing to sign different data at {hrs}")
        signature = sign_digest(self._key, digest)
        self._persist(LastSigned(height, round_, int(step), sign_bytes, signature))
        return signature

    def _persist(self, state: LastSigned) -> None:
        if self._path is not None:
            tmp = self._path.with_name(self._path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, state.to_json().encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self._path)
            _fsync_dir(self._path.parent)  # make the rename itself durable
        self._last = state


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
