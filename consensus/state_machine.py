"""The pure Tendermint state machine for one height (arXiv 1807.04938, Algorithm 1).

No I/O and no clock: `handle(event)` takes one input (a proposal, a vote, a fired timeout, the
application's verdict on a block, a built block, a verified decision) and returns the actions
the driver must carry out (sign and broadcast a vote or proposal, ask the application for a
block or a verdict, schedule a timeout, decide, record evidence). Messages reaching it have had
their signatures checked by the driver; this module checks everything else (height, round,
proposer, membership, stake-weighted quorums, conflicting votes).

Rules, as numbered in the paper: L11 StartRound, L22/L28 prevote on a proposal (lock rule),
L34 prevote timeout on any 2f+1, L36 lock and valid value on 2f+1 prevotes for a proposal, L44
precommit nil on 2f+1 nil prevotes, L47 precommit timeout, L49 decide, L55 skip to a round with
f+1 messages, L57/L61/L65 timeouts. "2f+1" is more than 2/3 of the voting power and "f+1" more
than 1/3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from consensus.types import (
    CommitCertificate,
    Decision,
    DuplicateVoteEvidence,
    Proposal,
    Step,
    ValidatorSet,
    Vote,
    VoteType,
)

# Messages for rounds further ahead than this are ignored: computing a far round's proposer
# costs O(round) and every stored round costs memory. Peers that far ahead are reached by
# retransmission once we skip forward (L55), or they hand us the decision.
MAX_ROUNDS_AHEAD = 1000

# --- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeoutConfig:
    """Per-step timeouts in seconds; each grows linearly with the round (base + round * delta).

    `commit` is the target block interval: after a decision the next height starts once
    `commit` seconds have passed since this height started (at once if deciding took longer),
    like CometBFT's timeout_commit but not added on top of a slow height.
    """

    propose: float = 3.0
    propose_delta: float = 0.5
    prevote: float = 1.0
    prevote_delta: float = 0.5
    precommit: float = 1.0
    precommit_delta: float = 0.5
    commit: float = 1.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"timeout {name} must be >= 0, got {value}")

    def duration(self, step: Step, round_: int) -> float:
        if step is Step.PROPOSE:
            return self.propose + round_ * self.propose_delta
        if step is Step.PREVOTE:
            return self.prevote + round_ * self.prevote_delta
        return self.precommit + round_ * self.precommit_delta


# --- events (inputs) ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalReceived:
    """A proposal whose signature the driver has verified."""

    proposal: Proposal


@dataclass(frozen=True)
class VoteReceived:
    """A vote whose signature the driver has verified (our own votes come back this way)."""

    vote: Vote


@dataclass(frozen=True)
class TimeoutFired:
    step: Step
    height: int
    round: int


@dataclass(frozen=True)
class ProposalValidated:
    """The application's verdict (process_proposal and evidence checks) on a round's proposal."""

    round: int
    block_hash: bytes
    valid: bool


@dataclass(frozen=True)
class ProposalBuilt:
    """The application built our block (prepare_proposal) for `round`."""

    round: int
    block: bytes
    block_hash: bytes
    evidence: tuple[DuplicateVoteEvidence, ...] = ()


@dataclass(frozen=True)
class DecisionReceived:
    """A decision for this height from a peer, certificate and block already checked."""

    decision: Decision


Event = (
    ProposalReceived
    | VoteReceived
    | TimeoutFired
    | ProposalValidated
    | ProposalBuilt
    | DecisionReceived
)

# --- actions (outputs) --------------------------------------------------------------------


@dataclass(frozen=True)
class RequestProposal:
    """Ask the application to build a block (we are the proposer and hold no valid value)."""

    height: int
    round: int


@dataclass(frozen=True)
class BroadcastProposal:
    """Sign and broadcast this proposal, then feed it back as ProposalReceived."""

    height: int
    round: int
    pol_round: int
    block: bytes
    block_hash: bytes
    evidence: tuple[DuplicateVoteEvidence, ...]


@dataclass(frozen=True)
class BroadcastVote:
    """Sign and broadcast this vote, then feed it back as VoteReceived."""

    height: int
    round: int
    vote_type: VoteType
    block_hash: bytes | None


@dataclass(frozen=True)
class ValidateProposal:
    """Ask the application whether this proposal's block is valid; answer ProposalValidated."""

    proposal: Proposal


@dataclass(frozen=True)
class ScheduleTimeout:
    step: Step
    height: int
    round: int
    duration: float


@dataclass(frozen=True)
class Decide:
    """The height is decided: store the decision, finalize and commit the block.

    `catch_up` marks a decision received from a peer (we are behind: no need to wait for
    the commit timeout before the next height)."""

    decision: Decision
    catch_up: bool = False


@dataclass(frozen=True)
class RecordEvidence:
    """A validator signed two different votes for one (height, round, type)."""

    evidence: DuplicateVoteEvidence


Action = (
    RequestProposal
    | BroadcastProposal
    | BroadcastVote
    | ValidateProposal
    | ScheduleTimeout
    | Decide
    | RecordEvidence
)


# --- vote bookkeeping ---------------------------------------------------------------------


@dataclass
class VoteSet:
    """Votes of one (round, type): one per validator, power tallied per block hash (None=nil)."""

    votes: dict[bytes, Vote] = field(default_factory=dict)
    power_for: dict[bytes | None, int] = field(default_factory=dict)
    total: int = 0

    def add(self, vote: Vote, power: int) -> Vote | None:
        """Record `vote`; return the earlier conflicting vote if the validator equivocates."""
        earlier = self.votes.get(vote.validator)
        if earlier is not None:
            return earlier if earlier.block_hash != vote.block_hash else None
        self.votes[vote.validator] = vote
        self.power_for[vote.block_hash] = self.power_for.get(vote.block_hash, 0) + power
        self.total += power
        return None

    def power(self, block_hash: bytes | None) -> int:
        return self.power_for.get(block_hash, 0)

    def for_block(self, block_hash: bytes | None) -> list[Vote]:
        return [v for v in self.votes.values() if v.block_hash == block_hash]


# --- the state machine --------------------------------------------------------------------


class HeightStateMachine:
    """Tendermint consensus for one height. Create one per height; call `start()` once.

    `me` is our validator address, or None for a node that follows without voting.
    """

    def __init__(
        self,
        chain_id: int,
        height: int,
        validators: ValidatorSet,
        me: bytes | None,
        timeouts: TimeoutConfig,
    ) -> None:
        if height < 1:
            raise ValueError("height must be >= 1")
        self.chain_id = chain_id
        self.height = height
        self.validators = validators
        self.me = me if me is not None and me in validators else None
        self.timeouts = timeouts

        self.round = 0
        self.step = Step.PROPOSE
        self.started = False
        self.locked: Proposal | None = None
        self.locked_round = -1
        self.valid: Proposal | None = None
        self.valid_round = -1
        self.decision: Decision | None = None

        self.proposals: dict[int, Proposal] = {}
        self.validity: dict[int, bool] = {}
        self._votes: dict[tuple[int, VoteType], VoteSet] = {}
        self._senders: dict[int, set[bytes]] = {}  # round -> validators heard from
        self._sender_power: dict[int, int] = {}
        self._skippable: set[int] = set()  # rounds with f+1 of the power heard from
        self._commit_candidates: set[tuple[int, bytes]] = set()  # precommit quorums for a block
        self._built: dict[int, bytes] = {}  # rounds where we built the block, with its hash
        self._requested: set[int] = set()
        self._prevote_timeout_rounds: set[int] = set()
        self._precommit_timeout_rounds: set[int] = set()
        self._locked_once: set[int] = set()
        self._evidence_seen: set[tuple[bytes, int, VoteType]] = set()
        self._proposers: dict[int, bytes] = {}
        self._rotated: tuple[int, ValidatorSet] = (0, validators)

    # -- queries ---------------------------------------------------------------------------

    def proposer(self, round_: int) -> bytes:
        """Proposer of `round_` at this height (memoised: rotation costs O(round))."""
        found = self._proposers.get(round_)
        if found is None:
            base_round, base = self._rotated
            if round_ < base_round:
                base_round, base = 0, self.validators
            rotated = base.increment(round_ - base_round)
            self._rotated = (round_, rotated)
            found = self._proposers[round_] = rotated.proposer.address
        return found

    def votes(self, round_: int, vote_type: VoteType) -> VoteSet:
        key = (round_, vote_type)
        vs = self._votes.get(key)
        if vs is None:
            vs = self._votes[key] = VoteSet()
        return vs

    def own_votes(self, round_: int) -> list[Vote]:
        """Our signed votes of `round_` (what the driver retransmits)."""
        if self.me is None:
            return []
        out = []
        for vt in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            v = self.votes(round_, vt).votes.get(self.me)
            if v is not None:
                out.append(v)
        return out

    # -- entry points ----------------------------------------------------------------------

    def start(self) -> list[Action]:
        """Begin round 0 (L10)."""
        if self.started:
            raise RuntimeError("state machine already started")
        self.started = True
        actions: list[Action] = []
        self._start_round(0, actions)
        self._evaluate(actions)
        return actions

    def handle(self, event: Event) -> list[Action]:
        """Apply one event and return the resulting actions (empty once decided)."""
        if not self.started:
            raise RuntimeError("call start() first")
        actions: list[Action] = []
        if self.decision is not None:
            return actions
        if isinstance(event, VoteReceived):
            self._on_vote(event.vote, actions)
        elif isinstance(event, ProposalReceived):
            self._on_proposal(event.proposal, actions)
        elif isinstance(event, ProposalValidated):
            p = self.proposals.get(event.round)
            if p is not None and p.block_hash == event.block_hash:
                self.validity[event.round] = event.valid
        elif isinstance(event, ProposalBuilt):
            self._on_built(event, actions)
        elif isinstance(event, TimeoutFired):
            self._on_timeout(event, actions)
        elif isinstance(event, DecisionReceived):
            self._on_decision(event.decision, actions)
        else:  # pragma: no cover - the Event union is closed
            raise TypeError(f"unknown event {event!r}")
        self._evaluate(actions)
        return actions

    # -- event handlers --------------------------------------------------------------------

    def _on_vote(self, vote: Vote, actions: list[Action]) -> None:
        if vote.height != self.height or vote.chain_id != self.chain_id:
            return
        if vote.round > self.round + MAX_ROUNDS_AHEAD:
            return
        power = self.validators.power_of(vote.validator)
        if power == 0:
            return
        earlier = self.votes(vote.round, vote.vote_type).add(vote, power)
        if earlier is not None:
            key = (vote.validator, vote.round, vote.vote_type)
            if key not in self._evidence_seen:
                self._evidence_seen.add(key)
                actions.append(RecordEvidence(DuplicateVoteEvidence.create(earlier, vote)))
            return
        senders = self._senders.setdefault(vote.round, set())
        if vote.validator not in senders:
            senders.add(vote.validator)
            total = self._sender_power.get(vote.round, 0) + power
            self._sender_power[vote.round] = total
            if total >= self.validators.one_third_power:
                self._skippable.add(vote.round)
        if (
            vote.vote_type is VoteType.PRECOMMIT
            and vote.block_hash is not None
            and self.votes(vote.round, VoteType.PRECOMMIT).power(vote.block_hash)
            >= self.validators.quorum_power
        ):
            self._commit_candidates.add((vote.round, vote.block_hash))

    def _on_proposal(self, proposal: Proposal, actions: list[Action]) -> None:
        if proposal.height != self.height or proposal.chain_id != self.chain_id:
            return
        if proposal.round > self.round + MAX_ROUNDS_AHEAD:
            return
        if proposal.proposer != self.proposer(proposal.round):
            return
        if proposal.round in self.proposals:
            return  # first proposal of a round wins; a second one is ignored
        self.proposals[proposal.round] = proposal
        if self._built.get(proposal.round) == proposal.block_hash and proposal.proposer == self.me:
            self.validity[proposal.round] = True
        elif self.valid is not None and self.valid.block_hash == proposal.block_hash:
            # Re-proposal of a block we already judged valid (same hash, same bytes).
            if self.valid.block == proposal.block and self.valid.evidence == proposal.evidence:
                self.validity[proposal.round] = True
            else:
                actions.append(ValidateProposal(proposal))
        else:
            actions.append(ValidateProposal(proposal))

    def _on_built(self, event: ProposalBuilt, actions: list[Action]) -> None:
        if event.round != self.round or self.step is not Step.PROPOSE:
            return
        if self.proposer(event.round) != self.me or event.round in self._built:
            return
        self._built[event.round] = event.block_hash
        actions.append(
            BroadcastProposal(
                self.height, event.round, -1, event.block, event.block_hash, event.evidence
            )
        )

    def _on_timeout(self, event: TimeoutFired, actions: list[Action]) -> None:
        if event.height != self.height or event.round != self.round:
            return
        if event.step is Step.PROPOSE and self.step is Step.PROPOSE:  # L57
            self._prevote(None, actions)
        elif event.step is Step.PREVOTE and self.step is Step.PREVOTE:  # L61
            self._precommit(None, actions)
        elif event.step is Step.PRECOMMIT:  # L65
            self._start_round(self.round + 1, actions)

    def _on_decision(self, decision: Decision, actions: list[Action]) -> None:
        if decision.height != self.height or decision.certificate.chain_id != self.chain_id:
            return
        self.decision = decision
        actions.append(Decide(decision, catch_up=True))

    # -- steps -----------------------------------------------------------------------------

    def _start_round(self, round_: int, actions: list[Action]) -> None:  # L11
        self.round = round_
        self.step = Step.PROPOSE
        if self.me is not None and self.proposer(round_) == self.me:
            if self.valid is not None:
                self._built[round_] = self.valid.block_hash
                actions.append(
                    BroadcastProposal(
                        self.height,
                        round_,
                        self.valid_round,
                        self.valid.block,
                        self.valid.block_hash,
                        self.valid.evidence,
                    )
                )
            elif round_ not in self._requested:
                self._requested.add(round_)
                actions.append(RequestProposal(self.height, round_))
        actions.append(
            ScheduleTimeout(
                Step.PROPOSE, self.height, round_, self.timeouts.duration(Step.PROPOSE, round_)
            )
        )

    def _prevote(self, block_hash: bytes | None, actions: list[Action]) -> None:
        self.step = Step.PREVOTE
        if self.me is not None:
            actions.append(BroadcastVote(self.height, self.round, VoteType.PREVOTE, block_hash))

    def _precommit(self, block_hash: bytes | None, actions: list[Action]) -> None:
        self.step = Step.PRECOMMIT
        if self.me is not None:
            actions.append(BroadcastVote(self.height, self.round, VoteType.PRECOMMIT, block_hash))

    # -- the upon-rules, re-evaluated until nothing changes --------------------------------

    def _evaluate(self, actions: list[Action]) -> None:
        while self.decision is None and self._apply_one_rule(actions):
            pass

    def _apply_one_rule(self, actions: list[Action]) -> bool:
        """Apply the first rule whose condition holds; True if state changed."""
        quorum = self.validators.quorum_power
        if self._try_decide(actions):  # L49
            return True
        # L55: f+1 of the power has sent messages for a higher round: go there.
        ahead = [r for r in self._skippable if r > self.round]
        if ahead:
            self._start_round(max(ahead), actions)
            return True
        r = self.round
        proposal = self.proposals.get(r)
        prevotes = self.votes(r, VoteType.PREVOTE)
        if self.step is Step.PROPOSE and proposal is not None and r in self.validity:
            valid = self.validity[r]
            h = proposal.block_hash
            if proposal.pol_round == -1:  # L22
                ok = valid and (self.locked_round == -1 or self._locked_on(h))
                self._prevote(h if ok else None, actions)
                return True
            vr = proposal.pol_round
            if vr < r and self.votes(vr, VoteType.PREVOTE).power(h) >= quorum:  # L28
                ok = valid and (self.locked_round <= vr or self._locked_on(h))
                self._prevote(h if ok else None, actions)
                return True
        if (
            self.step is Step.PREVOTE
            and prevotes.total >= quorum
            and r not in self._prevote_timeout_rounds
        ):  # L34
            self._prevote_timeout_rounds.add(r)
            actions.append(
                ScheduleTimeout(
                    Step.PREVOTE, self.height, r, self.timeouts.duration(Step.PREVOTE, r)
                )
            )
            return True
        if (
            proposal is not None
            and self.validity.get(r)
            and self.step >= Step.PREVOTE
            and r not in self._locked_once
            and prevotes.power(proposal.block_hash) >= quorum
        ):  # L36
            self._locked_once.add(r)
            if self.step is Step.PREVOTE:
                self.locked, self.locked_round = proposal, r
                self._precommit(proposal.block_hash, actions)
            self.valid, self.valid_round = proposal, r
            return True
        if self.step is Step.PREVOTE and prevotes.power(None) >= quorum:  # L44
            self._precommit(None, actions)
            return True
        if (
            self.votes(r, VoteType.PRECOMMIT).total >= quorum
            and r not in self._precommit_timeout_rounds
        ):  # L47
            self._precommit_timeout_rounds.add(r)
            actions.append(
                ScheduleTimeout(
                    Step.PRECOMMIT, self.height, r, self.timeouts.duration(Step.PRECOMMIT, r)
                )
            )
            return True
        return False

    def _locked_on(self, block_hash: bytes) -> bool:
        return self.locked is not None and self.locked.block_hash == block_hash

    def _try_decide(self, actions: list[Action]) -> bool:
        for r, block_hash in sorted(self._commit_candidates):
            block = self._valid_proposal_for(block_hash, prefer_round=r)
            if block is None:
                continue  # the block is unknown or not (yet) judged valid
            vs = self.votes(r, VoteType.PRECOMMIT)
            cert = CommitCertificate.from_votes(vs.for_block(block_hash))
            self.decision = Decision(block, cert)
            actions.append(Decide(self.decision))
            return True
        return False

    def _valid_proposal_for(self, block_hash: bytes, prefer_round: int) -> Proposal | None:
        candidates: Iterable[int] = [prefer_round, *sorted(self.proposals)]
        for r in candidates:
            p = self.proposals.get(r)
            if p is not None and p.block_hash == block_hash and self.validity.get(r):
                return p
        return None
