"""`ConsensusTransport`: consensus's `TransportAPI` over the p2p service.

Proposals, votes, evidence and decisions travel as gossip of their own kind, the body being
`consensus.types.encode_message(message)`. Before anything is delivered or relayed it must
decode, match its kind, name our chain, and carry a valid signature (votes, proposals, both
evidence votes, a decision's proposal); failures count against the sending peer. Whether a
signer belongs to the validator set is for consensus to judge (it knows the set per height).
Delivery is per-peer in order and flow-controlled (see `p2p.host`), so consensus's own
retransmissions are a safety net, not the only path.
"""

from __future__ import annotations

from typing import Any

import trio
from libp2p.peer.id import ID

from consensus.abc import TransportAPI
from consensus.types import (
    ConsensusMessage,
    Decision,
    DuplicateVoteEvidence,
    Proposal,
    Vote,
    decode_message,
    encode_message,
)
from p2p.abc import ValidationResult
from p2p.host import GossipMessage, P2PService
from p2p.wire import Kind

KIND_OF: dict[type[Any], Kind] = {
    Vote: Kind.VOTE,
    Proposal: Kind.PROPOSAL,
    DuplicateVoteEvidence: Kind.EVIDENCE,
    Decision: Kind.DECISION,
}
CONSENSUS_KINDS = tuple(KIND_OF.values())


def chain_id_of(message: ConsensusMessage) -> int:
    if isinstance(message, Vote | Proposal):
        return message.chain_id
    if isinstance(message, DuplicateVoteEvidence):
        return message.vote_a.chain_id
    return message.proposal.chain_id


def check_message(message: ConsensusMessage) -> None:
    """Raise unless every signature the message carries is valid (VerificationError)."""
    if isinstance(message, Vote | Proposal):
        message.verify()
    elif isinstance(message, DuplicateVoteEvidence):
        message.check_shape()
        message.vote_a.verify()
        message.vote_b.verify()
    else:
        message.proposal.verify()


class ConsensusTransport(TransportAPI):
    """Consensus messages over a `P2PService` (create it before the service starts relaying)."""

    def __init__(self, service: P2PService, chain_id: int | None = None) -> None:
        self.service = service
        self.chain_id = chain_id
        for kind in CONSENSUS_KINDS:
            service.set_validator(kind, self._validator_for(kind))
        self._inbox: trio.MemoryReceiveChannel[GossipMessage] = service.subscribe(*CONSENSUS_KINDS)

    def _validator_for(self, kind: Kind) -> Any:
        def validate(body: bytes, peer: ID) -> ValidationResult:
            return self.validate(kind, body)

        return validate

    def validate(self, kind: Kind, body: bytes) -> ValidationResult:
        """ACCEPT a well-formed, correctly signed message of `kind` for our chain, else REJECT."""
        try:
            message = decode_message(body)
            check_message(message)
        except ValueError:  # consensus DecodeError and VerificationError are ValueErrors
            return ValidationResult.REJECT
        if KIND_OF[type(message)] is not kind:
            return ValidationResult.REJECT
        if self.chain_id is not None and chain_id_of(message) != self.chain_id:
            return ValidationResult.REJECT
        return ValidationResult.ACCEPT

    async def broadcast(self, message: ConsensusMessage) -> None:
        await self.service.broadcast(KIND_OF[type(message)], encode_message(message))

    async def receive(self) -> ConsensusMessage:
        while True:
            gossip = await self._inbox.receive()
            try:
                return decode_message(gossip.data)
            except ValueError:  # validated on arrival, so this cannot happen; never crash
                continue
