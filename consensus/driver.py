"""The consensus driver: one trio task that owns the state machine and carries out its actions.

It is the only code that mutates consensus state (CometBFT's receiveRoutine). Around the pure
`HeightStateMachine` it
- writes every input to the WAL before applying it, and replays the WAL after a restart;
- signs through a `SignerAPI` (which persists its last-signed step first: no double-signing);
- calls the `ApplicationAPI` (prepare/process proposals, finalize_block and commit on decision);
- broadcasts through a `TransportAPI` and retransmits its current votes and proposal every
  `rebroadcast_interval`, because gossip may drop them; answers a peer still voting on a
  decided height with that height's `Decision` (block + commit certificate) so it catches up;
- schedules timeouts with `trio.sleep` (tests drive them with `trio.testing.MockClock`);
- keeps an evidence pool: evidence is verified, gossiped, included by proposers and handed to
  the application once its block is decided;
- applies validator-set updates returned by finalize_block at height + 2.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import trio
from eth_hash.auto import keccak

from consensus.abc import (
    ApplicationAPI,
    DoubleSignError,
    FinalizeBlockRequest,
    PrepareProposalRequest,
    ProcessProposalRequest,
    SignerAPI,
    TransportAPI,
)
from consensus.state_machine import (
    Action,
    BroadcastProposal,
    BroadcastVote,
    Decide,
    DecisionReceived,
    Event,
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
from consensus.store import ChainState, ConsensusDB
from consensus.types import (
    MAX_EVIDENCE_PER_BLOCK,
    ConsensusMessage,
    Decision,
    DecodeError,
    DuplicateVoteEvidence,
    Proposal,
    ValidatorSet,
    VerificationError,
    Vote,
    VoteType,
)
from consensus.wal import decode_event, encode_event

log = logging.getLogger("consensus")


def _wall_clock_seconds() -> int:
    return int(time.time())


@dataclass(frozen=True)
class DriverConfig:
    """Runtime settings of one node's consensus (the chain's timeouts come from genesis)."""

    chain_id: int
    timeouts: TimeoutConfig = field(default_factory=TimeoutConfig)
    rebroadcast_interval: float = 1.0
    evidence_max_age: int = 100  # heights
    catch_up_window: int = 100  # answer peers this many heights behind with the decision
    max_future_messages: int = 10_000
    inbox_size: int = 10_000
    max_block_bytes: int = 4 * 1024 * 1024
    now: Callable[[], int] = _wall_clock_seconds  # block timestamps (unix seconds)
    # Awaited (outside the driver's task) before each height starts, after the commit pause. A lone validator that should make blocks only when there is work
    # (the devnet's instant mode, CometBFT's create_empty_blocks = false) waits here for
    # transactions; a network leaves it None, since peers expect blocks on time.
    before_height: Callable[[int], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if self.rebroadcast_interval <= 0:
            raise ValueError("rebroadcast_interval must be positive")
        if self.evidence_max_age < 1:
            raise ValueError("evidence_max_age must be >= 1")


@dataclass(frozen=True)
class _Tick:
    """Time to retransmit our current votes and proposal."""


@dataclass(frozen=True)
class _StartHeight:
    height: int


_Input = ConsensusMessage | TimeoutFired | _Tick | _StartHeight


class ConsensusDriver:
    """Runs consensus for one node. `signer` None makes a follower that never votes."""

    def __init__(
        self,
        app: ApplicationAPI,
        transport: TransportAPI,
        db: ConsensusDB,
        signer: SignerAPI | None,
        config: DriverConfig,
    ) -> None:
        self.app = app
        self.transport = transport
        self.db = db
        self.signer = signer
        self.config = config
        self._state: ChainState | None = None
        self._sm: HeightStateMachine | None = None
        self._replaying = False
        self._wal_seq = 0
        self._future: dict[int, list[ConsensusMessage]] = {}
        self._future_count = 0
        self._pending_evidence: dict[bytes, DuplicateVoteEvidence] = {}
        self._stale_answered: dict[int, float] = {}
        self._decided_at: dict[int, float] = {}
        self._waiters: list[tuple[int, trio.Event]] = []
        self._height_started = 0.0
        self._inbox_send, self._inbox_recv = trio.open_memory_channel[_Input](config.inbox_size)
        self._nursery: trio.Nursery | None = None
        self.started = trio.Event()
        self.wal_replayed = 0  # WAL entries replayed at the last start (observability, tests)

    # -- public ----------------------------------------------------------------------------

    @property
    def state(self) -> ChainState:
        if self._state is None:
            raise RuntimeError("consensus has not started")
        return self._state

    @property
    def height(self) -> int:
        """Last decided height."""
        return self.state.height

    @property
    def round_state(self) -> HeightStateMachine | None:
        """The state machine of the height in progress (read-only use: status, tests)."""
        return self._sm

    def pending_evidence(self) -> list[DuplicateVoteEvidence]:
        return sorted(self._pending_evidence.values(), key=lambda e: e.hash())

    def status(self) -> dict[str, object]:
        """A snapshot for RPC / `openledger status` (read-only, any task may call it)."""
        sm = self._sm
        state = self._state
        return {
            "height": state.height if state is not None else None,
            "last_block_hash": state.last_block_hash.hex() if state is not None else None,
            "round": sm.round if sm is not None else None,
            "step": sm.step.name.lower() if sm is not None else "commit",
            "proposer": sm.proposer(sm.round).hex() if sm is not None else None,
            "validator": self.signer.address.hex() if self.signer is not None else None,
            "validators": len(state.validators) if state is not None else 0,
            "pending_evidence": len(self._pending_evidence),
        }

    async def submit(self, message: ConsensusMessage) -> None:
        """Hand the driver a message as if a peer had sent it.

        Block sync uses this: feed each verified-or-not `Decision` for the next height in
        order, awaiting `wait_for_height` between them; the driver verifies the certificate
        against its validator set and has the application check the block before executing.
        """
        await self._inbox_send.send(message)

    def relay_ok(self, message: ConsensusMessage) -> bool:
        """Cheap validity check for gossip relays (p2p calls it before forwarding).

        True when the message is signed by who it names, that signer belongs to the validator
        set of its height (for the heights this node can judge), and the height is within
        reach. It reads state only, so any task may call it.
        """
        if self._state is None:
            return False
        current = self._state.height + 1
        try:
            if isinstance(message, Vote | Proposal):
                signer = message.validator if isinstance(message, Vote) else message.proposer
                if not current - 1 <= message.height <= current + 1:
                    return False
                if message.chain_id != self.config.chain_id:
                    return False
                vset = (
                    self._state.validators
                    if message.height == current
                    else self.db.load_valset(message.height)
                )
                if vset is not None and signer not in vset:
                    return False
                message.verify()
            elif isinstance(message, DuplicateVoteEvidence):
                self._check_evidence(message)
            elif isinstance(message, Decision):
                if message.height > current:
                    return False
                vset = self.db.load_valset(message.height)
                if vset is None:
                    return False
                message.verify(self.config.chain_id, vset)
        except VerificationError:
            return False
        return True

    async def wait_for_height(self, height: int) -> None:
        """Return once `height` is decided and committed."""
        await self.started.wait()
        if self.state.height >= height:
            return
        event = trio.Event()
        self._waiters.append((height, event))
        await event.wait()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Recover, then run until cancelled (`nursery.start(driver.run)` waits for recovery).

        `task_status` is typed Any: the old trio-stubs installed beside trio lack TaskStatus.
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._handshake()
            nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._tick_loop)
            if self.config.before_height is None:
                await self._start_height(self.state.height + 1)
            else:
                nursery.start_soon(self._timer, _StartHeight(self.state.height + 1), 0.0)
            self.started.set()
            task_status.started()
            async for item in self._inbox_recv:
                await self._dispatch(item)

    # -- start-up --------------------------------------------------------------------------

    async def _handshake(self) -> None:
        """Bring consensus state and the application to the same height (CometBFT handshake)."""
        info = await self.app.info()
        state = self.db.load_state()
        if state is None:
            if not info.validators:
                raise RuntimeError("the application reported no validators to start from")
            validators = ValidatorSet.create(info.validators)
            state = ChainState(
                self.config.chain_id,
                info.height,
                info.last_block_hash,
                validators,
                validators.increment(1),
            )
            self.db.save_state(
                state,
                extra_puts=[
                    ConsensusDB.valset_entry(info.height + 1, state.validators),
                    ConsensusDB.valset_entry(info.height + 2, state.next_validators),
                ],
            )
        if state.chain_id != self.config.chain_id:
            raise RuntimeError(
                f"consensus store is for chain {state.chain_id}, configured {self.config.chain_id}"
            )
        self._state = state
        self._pending_evidence = {e.hash(): e for e in self.db.pending_evidence()}
        if info.height > state.height:
            raise RuntimeError(
                f"application is at height {info.height}, ahead of consensus at {state.height}"
            )
        while info.height < state.height:
            decision = self.db.load_decision(info.height + 1)
            if decision is None:
                raise RuntimeError(f"no stored decision to replay height {info.height + 1}")
            log.info("replaying height %d into the application", decision.height)
            await self.app.finalize_block(self._finalize_request(decision))
            await self.app.commit()
            info = await self.app.info()
        unfinished = self.db.load_decision(state.height + 1)
        if unfinished is not None:
            # Decided and stored, but the crash came before the new state was saved.
            log.info("finishing height %d decided before the restart", unfinished.height)
            await self._commit_decision(unfinished, start_next=False)
            info = await self.app.info()
        if info.height != self.state.height:
            raise RuntimeError(
                f"application is at height {info.height}, consensus at {self.state.height}"
            )

    async def _start_height(self, height: int) -> None:
        state = self.state
        if height != state.height + 1 or self._sm is not None:
            return
        me = self.signer.address if self.signer is not None else None
        sm = HeightStateMachine(
            self.config.chain_id, height, state.validators, me, self.config.timeouts
        )
        self._sm = sm
        self._height_started = trio.current_time()
        self._stale_answered = {h: t for h, t in self._stale_answered.items() if h >= height - 10}
        self._decided_at = {h: t for h, t in self._decided_at.items() if h >= height - 10}
        entries = self.db.wal_entries(height)
        self._wal_seq = len(entries)
        self._replaying = bool(entries)
        try:
            await self._execute(sm.start())
            for raw in entries:
                if self._sm is not sm:
                    break
                try:
                    event = decode_event(raw)
                except DecodeError as exc:
                    log.error("skipping corrupt WAL entry at height %d: %s", height, exc)
                    continue
                await self._execute(sm.handle(event))
        finally:
            self._replaying = False
        self.wal_replayed = len(entries)
        if entries and self._sm is sm:
            log.info("replayed %d WAL entries at height %d", len(entries), height)
            await self._resume(sm)
        for old in [h for h in self._future if h < height]:
            self._future_count -= len(self._future.pop(old))
        for message in self._future.pop(height, []):
            self._future_count -= 1
            await self._on_message(message)

    async def _resume(self, sm: HeightStateMachine) -> None:
        """Redo the application calls that replay skipped and that are still needed."""
        for r, proposal in sorted(sm.proposals.items()):
            if r not in sm.validity and self._sm is sm:
                await self._apply(
                    ProposalValidated(r, proposal.block_hash, await self._validate(proposal))
                )
        if (
            self._sm is sm
            and sm.me is not None
            and sm.proposer(sm.round) == sm.me
            and sm.round not in sm.proposals
        ):
            await self._execute([RequestProposal(sm.height, sm.round)])

    # -- inputs ----------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            try:
                message = await self.transport.receive()
            except DecodeError as exc:
                log.debug("dropping undecodable message: %s", exc)
                continue
            await self._inbox_send.send(message)

    async def _tick_loop(self) -> None:
        while True:
            await trio.sleep(self.config.rebroadcast_interval)
            await self._inbox_send.send(_Tick())

    async def _timer(self, event: TimeoutFired | _StartHeight, delay: float) -> None:
        await trio.sleep(delay)
        if isinstance(event, _StartHeight) and self.config.before_height is not None:
            await self.config.before_height(event.height)
        await self._inbox_send.send(event)

    async def _dispatch(self, item: _Input) -> None:
        if isinstance(item, _Tick):
            await self._retransmit()
        elif isinstance(item, _StartHeight):
            await self._start_height(item.height)
        elif isinstance(item, TimeoutFired):
            if self._sm is not None and item.height == self._sm.height:
                await self._apply(item)
        else:
            await self._on_message(item)

    async def _on_message(self, message: ConsensusMessage) -> None:
        if isinstance(message, DuplicateVoteEvidence):
            await self._on_evidence(message, relay=True)
            return
        if isinstance(message, Decision):
            await self._on_decision(message)
            return
        try:
            message.verify()
        except VerificationError as exc:
            log.debug("dropping badly signed %s: %s", type(message).__name__, exc)
            return
        current = self.state.height + 1
        if message.height < current:
            await self._answer_stale(message.height)
        elif message.height == current and self._sm is not None:
            event: Event = (
                VoteReceived(message) if isinstance(message, Vote) else ProposalReceived(message)
            )
            await self._apply(event)
        elif message.height <= current + 1:
            self._buffer(message)

    def _buffer(self, message: Vote | Proposal | Decision) -> None:
        if self._future_count < self.config.max_future_messages:
            self._future.setdefault(message.height, []).append(message)
            self._future_count += 1

    async def _on_decision(self, decision: Decision) -> None:
        sm = self._sm
        if sm is None:
            if decision.height == self.state.height + 1:
                self._buffer(decision)  # between heights: apply once the next one starts
            return
        if decision.height != sm.height or sm.decision is not None:
            return
        try:
            decision.verify(self.config.chain_id, self.state.validators)
        except VerificationError as exc:
            log.debug("dropping unverifiable decision for height %d: %s", decision.height, exc)
            return
        if not await self._validate(decision.proposal):
            log.warning("certified block at height %d rejected by the application", sm.height)
            return
        if self._sm is sm:
            await self._apply(DecisionReceived(decision))

    async def _on_evidence(self, evidence: DuplicateVoteEvidence, *, relay: bool) -> None:
        key = evidence.hash()
        if key in self._pending_evidence or self.db.is_evidence_committed(key):
            return
        try:
            self._check_evidence(evidence)
        except VerificationError as exc:
            log.debug("dropping evidence: %s", exc)
            return
        self._pending_evidence[key] = evidence
        self.db.add_pending_evidence(evidence)
        log.warning(
            "evidence of double signing by %s at height %d",
            evidence.validator.hex(),
            evidence.height,
        )
        if relay and not self._replaying:
            await self.transport.broadcast(evidence)

    def _check_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        current = self.state.height + 1
        if evidence.height > current:
            raise VerificationError("evidence from the future")
        if evidence.height < current - self.config.evidence_max_age:
            raise VerificationError("evidence too old")
        validators = self.db.load_valset(evidence.height)
        if validators is None:
            raise VerificationError(f"no validator set known for height {evidence.height}")
        evidence.verify(self.config.chain_id, validators)

    async def _answer_stale(self, height: int) -> None:
        """A peer still works on a decided height: send it that height's decision.

        Votes arriving just after our decision are normal (slower peers finish the same
        height), so only a peer still voting an interval later is answered.
        """
        if height < self.state.height - self.config.catch_up_window:
            return  # that far behind, a peer syncs blocks instead
        now = trio.current_time()
        decided = self._decided_at.get(height)
        if decided is not None and now - decided < self.config.rebroadcast_interval:
            return
        last = self._stale_answered.get(height)
        if last is not None and now - last < self.config.rebroadcast_interval:
            return
        decision = self.db.load_decision(height)
        if decision is not None:
            self._stale_answered[height] = now
            await self.transport.broadcast(decision)

    async def _retransmit(self) -> None:
        sm = self._sm
        if sm is None or sm.decision is not None:
            return
        proposal = sm.proposals.get(sm.round)
        if proposal is not None and proposal.proposer == sm.me:
            await self.transport.broadcast(proposal)
        for r in (sm.round - 1, sm.round):
            if r >= 0:
                for vote in sm.own_votes(r):
                    await self.transport.broadcast(vote)

    # -- applying events and actions -------------------------------------------------------

    async def _apply(self, event: Event) -> None:
        sm = self._sm
        if sm is None:
            return
        self._wal_write(sm.height, event)
        await self._execute(sm.handle(event))

    def _wal_write(self, height: int, event: Event, *, sync: bool = False) -> None:
        """Log an input before it is applied. Peer messages, timeouts, our prevotes and
        proposals are written without fsync; our precommits with it, before they are
        broadcast, which makes everything logged before them durable too (CometBFT flushes
        its WAL before signing): a precommit that left this node always comes back after a
        crash together with the prevotes that locked us."""
        if self._replaying:
            return
        self.db.wal_append(height, self._wal_seq, encode_event(event), sync=sync)
        self._wal_seq += 1

    async def _execute(self, actions: list[Action]) -> None:
        sm = self._sm
        queue: deque[Action] = deque(actions)
        while queue and self._sm is sm and sm is not None:
            action = queue.popleft()
            if isinstance(action, ScheduleTimeout):
                assert self._nursery is not None
                event = TimeoutFired(action.step, action.height, action.round)
                self._nursery.start_soon(self._timer, event, action.duration)
            elif isinstance(action, BroadcastVote):
                queue.extend(await self._sign_and_send_vote(sm, action))
            elif isinstance(action, BroadcastProposal):
                queue.extend(await self._sign_and_send_proposal(sm, action))
            elif isinstance(action, RequestProposal):
                if not self._replaying:
                    queue.extend(await self._build_proposal(sm, action))
            elif isinstance(action, ValidateProposal):
                if not self._replaying:
                    valid = await self._validate(action.proposal)
                    if self._sm is sm:
                        verdict = ProposalValidated(
                            action.proposal.round, action.proposal.block_hash, valid
                        )
                        self._wal_write(sm.height, verdict)
                        queue.extend(sm.handle(verdict))
            elif isinstance(action, RecordEvidence):
                await self._on_evidence(action.evidence, relay=True)
            elif isinstance(action, Decide):
                await self._commit_decision(
                    action.decision,
                    start_next=True,
                    delay=0.0 if action.catch_up else self._commit_pause(),
                )
            else:  # pragma: no cover - the Action union is closed
                raise TypeError(f"unknown action {action!r}")

    def _commit_pause(self) -> float:
        """The pause before the next height. `timeouts.commit` is the target block interval:
        time spent deciding this height (a large block executing) counts against it, so
        heavy blocks do not add a full pause on top of their own time."""
        elapsed = trio.current_time() - self._height_started
        return max(0.0, self.config.timeouts.commit - elapsed)

    async def _sign_and_send_vote(
        self, sm: HeightStateMachine, action: BroadcastVote
    ) -> list[Action]:
        assert self.signer is not None  # the state machine votes only when it has an address
        unsigned = Vote(
            self.config.chain_id,
            action.height,
            action.round,
            action.vote_type,
            action.block_hash,
            self.signer.address,
        )
        try:
            vote = self.signer.sign_vote(unsigned)
        except DoubleSignError as exc:
            log.warning("not voting: %s", exc)
            return []
        event = VoteReceived(vote)
        # Only a precommit implies a lock that must survive a crash once it is out; a lost
        # prevote or proposal is harmless (the signer still refuses to sign another one).
        self._wal_write(sm.height, event, sync=action.vote_type is VoteType.PRECOMMIT)
        follow_up = sm.handle(event)
        if not self._replaying:
            await self.transport.broadcast(vote)
            if self.signer.double_sign_for_tests and action.vote_type is VoteType.PREVOTE:
                other = keccak(b"double-sign" + (action.block_hash or b"nil"))
                conflicting = self.signer.sign_conflicting_vote_for_tests(
                    replace(unsigned, block_hash=bytes(other))
                )
                await self.transport.broadcast(conflicting)
        return follow_up

    async def _sign_and_send_proposal(
        self, sm: HeightStateMachine, action: BroadcastProposal
    ) -> list[Action]:
        assert self.signer is not None
        unsigned = Proposal(
            self.config.chain_id,
            action.height,
            action.round,
            action.pol_round,
            action.block_hash,
            action.block,
            self.signer.address,
            action.evidence,
        )
        try:
            proposal = self.signer.sign_proposal(unsigned)
        except DoubleSignError as exc:
            log.warning("not proposing: %s", exc)
            return []
        event = ProposalReceived(proposal)
        self._wal_write(sm.height, event)
        follow_up = sm.handle(event)
        if not self._replaying:
            await self.transport.broadcast(proposal)
        return follow_up

    async def _build_proposal(
        self, sm: HeightStateMachine, action: RequestProposal
    ) -> list[Action]:
        assert self.signer is not None
        evidence = tuple(self._evidence_for_block())
        try:
            built = await self.app.prepare_proposal(
                PrepareProposalRequest(
                    height=action.height,
                    round=action.round,
                    timestamp=self.config.now(),
                    proposer=self.signer.address,
                    evidence=evidence,
                    max_block_bytes=self.config.max_block_bytes,
                )
            )
        except Exception:
            log.exception(
                "prepare_proposal failed at height %d round %d", action.height, action.round
            )
            return []
        if self._sm is not sm:
            return []
        event = ProposalBuilt(action.round, built.block, built.block_hash, evidence)
        self._wal_write(sm.height, event)
        return sm.handle(event)

    def _evidence_for_block(self) -> list[DuplicateVoteEvidence]:
        fresh = []
        for ev in self.pending_evidence():
            try:
                self._check_evidence(ev)
            except VerificationError:
                continue
            fresh.append(ev)
        return fresh[:MAX_EVIDENCE_PER_BLOCK]

    async def _validate(self, proposal: Proposal) -> bool:
        """Evidence checks, then the application's verdict on the block."""
        hashes = set()
        for ev in proposal.evidence:
            key = ev.hash()
            if key in hashes or self.db.is_evidence_committed(key):
                return False
            hashes.add(key)
            try:
                self._check_evidence(ev)
            except VerificationError as exc:
                log.info("proposal carries bad evidence: %s", exc)
                return False
        try:
            return bool(
                await self.app.process_proposal(
                    ProcessProposalRequest(
                        height=proposal.height,
                        round=proposal.round,
                        block=proposal.block,
                        block_hash=proposal.block_hash,
                        proposer=proposal.proposer,
                        evidence=proposal.evidence,
                    )
                )
            )
        except Exception:
            log.exception("process_proposal failed at height %d", proposal.height)
            return False

    # -- decisions -------------------------------------------------------------------------

    @staticmethod
    def _finalize_request(decision: Decision) -> FinalizeBlockRequest:
        p = decision.proposal
        return FinalizeBlockRequest(
            height=decision.height,
            round=decision.certificate.round,
            block=p.block,
            block_hash=p.block_hash,
            proposer=p.proposer,
            certificate=decision.certificate,
            evidence=p.evidence,
        )

    async def _commit_decision(
        self, decision: Decision, *, start_next: bool, delay: float = 0.0
    ) -> None:
        """Persist, execute and commit a decided block, then move to the next height.

        Order (for crash recovery in `_handshake`): save the decision; finalize_block; save
        the new chain state with the validator sets, evidence marks and WAL cleanup in one
        batch; then the application's commit.
        """
        state = self.state
        height = decision.height
        self._sm = None
        # Not fsynced on its own: the state batch below syncs it, and until then the
        # application has committed nothing, so losing it to a power cut loses nothing.
        self.db.save_decision(decision, sync=False)
        result = await self.app.finalize_block(self._finalize_request(decision))
        try:
            after = state.next_validators.apply_updates(result.validator_updates).increment(1)
        except ValueError as exc:
            raise RuntimeError(f"application returned bad validator updates: {exc}") from exc
        new_state = ChainState(
            state.chain_id, height, decision.proposal.block_hash, state.next_validators, after
        )
        ev_puts, ev_deletes = ConsensusDB.evidence_committed_entries(
            decision.proposal.evidence, height
        )
        self.db.save_state(
            new_state,
            extra_puts=[
                ConsensusDB.valset_entry(height + 1, new_state.validators),
                ConsensusDB.valset_entry(height + 2, new_state.next_validators),
                *ev_puts,
            ],
            deletes=[
                *ev_deletes,
                *self.db.wal_keys_below(height + 1),
                *self.db.expired_evidence_keys(height + 1 - self.config.evidence_max_age),
            ],
        )
        await self.app.commit()
        self._state = new_state
        self._decided_at[height] = trio.current_time()
        min_height = height + 1 - self.config.evidence_max_age
        for key, ev in list(self._pending_evidence.items()):
            if ev.height < min_height or ev in decision.proposal.evidence:
                del self._pending_evidence[key]
        log.info(
            "decided height %d round %d block %s",
            height,
            decision.certificate.round,
            decision.proposal.block_hash.hex()[:16],
        )
        still_waiting = []
        for h, event in self._waiters:
            if h <= height:
                event.set()
            else:
                still_waiting.append((h, event))
        self._waiters = still_waiting
        if start_next and self._nursery is not None:
            self._nursery.start_soon(self._timer, _StartHeight(height + 1), delay)
