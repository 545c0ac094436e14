"""Write-ahead log entries: every input of the state machine, encoded before it is applied.

On restart the driver feeds a height's entries back into a fresh state machine and reaches
the state it had at the crash (CometBFT's consensus WAL). Entries are one tag byte then RLP.
"""

from __future__ import annotations

import rlp

from consensus.state_machine import (
    DecisionReceived,
    Event,
    ProposalBuilt,
    ProposalReceived,
    ProposalValidated,
    TimeoutFired,
    VoteReceived,
)
from consensus.types import (
    Decision,
    DecodeError,
    DuplicateVoteEvidence,
    Proposal,
    Step,
    Vote,
    rlp_encode,
)

_PROPOSAL, _VOTE, _TIMEOUT, _VALIDATED, _BUILT, _DECISION = range(1, 7)


def encode_event(event: Event) -> bytes:
    if isinstance(event, ProposalReceived):
        return bytes([_PROPOSAL]) + event.proposal.encode()
    if isinstance(event, VoteReceived):
        return bytes([_VOTE]) + event.vote.encode()
    if isinstance(event, TimeoutFired):
        return bytes([_TIMEOUT]) + rlp_encode([int(event.step), event.height, event.round])
    if isinstance(event, ProposalValidated):
        return bytes([_VALIDATED]) + rlp_encode(
            [event.round, event.block_hash, 1 if event.valid else 0]
        )
    if isinstance(event, ProposalBuilt):
        return bytes([_BUILT]) + rlp_encode(
            [event.round, event.block, event.block_hash, [e.to_rlp() for e in event.evidence]]
        )
    if isinstance(event, DecisionReceived):
        return bytes([_DECISION]) + event.decision.encode()
    raise TypeError(f"cannot log {event!r}")


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def decode_event(data: bytes) -> Event:
    if not data:
        raise DecodeError("empty WAL entry")
    tag, body = data[0], data[1:]
    try:
        if tag == _PROPOSAL:
            return ProposalReceived(Proposal.decode(body))
        if tag == _VOTE:
            return VoteReceived(Vote.decode(body))
        if tag == _DECISION:
            return DecisionReceived(Decision.decode(body))
        f = rlp.decode(body)
        if tag == _TIMEOUT:
            return TimeoutFired(Step(_int(f[0])), _int(f[1]), _int(f[2]))
        if tag == _VALIDATED:
            return ProposalValidated(_int(f[0]), f[1], bool(_int(f[2])))
        if tag == _BUILT:
            return ProposalBuilt(
                _int(f[0]), f[1], f[2], tuple(DuplicateVoteEvidence.from_rlp(e) for e in f[3])
            )
    except DecodeError:
        raise
    except (ValueError, IndexError, TypeError, rlp.DecodingError) as exc:
        raise DecodeError(f"corrupt WAL entry: {exc}") from exc
    raise DecodeError(f"unknown WAL entry tag {tag}")
