"""The interfaces consensus is driven through (py-evm style `...API` names).

- `ApplicationAPI`: the only boundary to the chain (CometBFT's ABCI). `evm_bridge` implements
  it; `tests/consensus/kvapp.py` is a toy key-value one. Methods are async so an implementation
  may run block execution in another process without stalling the event loop.
- `TransportAPI`: what consensus needs from the network (p2p implements it over libp2p;
  `consensus.memory.MemoryNetwork` is the in-memory one for tests).
- `SignerAPI`: a private validator that persists its last-signed (height, round, step) before
  it returns a signature, so a crash and restart never double-signs.
- `ConsensusStoreAPI`: a tiny synchronous key-value store (LevelDB in the node) for decisions
  (block + commit certificate per height), consensus state, evidence and the write-ahead log.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from consensus.types import (
    CommitCertificate,
    ConsensusMessage,
    DuplicateVoteEvidence,
    Proposal,
    Validator,
    ValidatorUpdate,
    Vote,
)

# --- application boundary -----------------------------------------------------------------


@dataclass(frozen=True)
class AppInfo:
    """What the application has committed: consensus resumes from here on start.

    `validators` is the genesis validator set when `height` is 0; later it is informational
    (consensus keeps its own validator sets with proposer priorities in its store).
    """

    height: int
    last_block_hash: bytes
    validators: tuple[Validator, ...]


@dataclass(frozen=True)
class CheckTxResult:
    """Admission result for one transaction; code 0 is accepted."""

    code: int = 0
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class PrepareProposalRequest:
    """Build the block for `height`. The application must commit to `evidence` inside the
    block (e.g. `consensus.types.evidence_hash(evidence)` in the header's extra data) so the
    voted-on hash binds it."""

    height: int
    round: int
    timestamp: int  # unix seconds from the proposer's clock
    proposer: bytes
    evidence: tuple[DuplicateVoteEvidence, ...] = ()
    max_block_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class ProposedBlock:
    """Opaque block bytes and the application's hash of them (the Ethereum header hash)."""

    block: bytes
    block_hash: bytes


@dataclass(frozen=True)
class ProcessProposalRequest:
    """Check another validator's block: re-derive its hash from `block`, compare it with
    `block_hash`, check it is valid on top of the last committed block and commits to
    `evidence`. Must be deterministic: every honest node must give the same answer."""

    height: int
    round: int
    block: bytes
    block_hash: bytes
    proposer: bytes
    evidence: tuple[DuplicateVoteEvidence, ...] = ()


@dataclass(frozen=True)
class FinalizeBlockRequest:
    """Execute a decided block. `certificate` is this node's commit certificate for it (which
    precommits it holds may differ between nodes: do not derive state from it); `evidence`
    has been verified by consensus and is what the proposer put in the block."""

    height: int
    round: int
    block: bytes
    block_hash: bytes
    proposer: bytes
    certificate: CommitCertificate
    evidence: tuple[DuplicateVoteEvidence, ...] = ()


@dataclass(frozen=True)
class FinalizeBlockResult:
    """Execution outcome. `validator_updates` take effect at height + 2."""

    app_hash: bytes = b""
    validator_updates: tuple[ValidatorUpdate, ...] = ()
    tx_results: tuple[CheckTxResult, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class QueryResult:
    code: int = 0
    value: bytes = b""
    log: str = ""


class ApplicationAPI(ABC):
    """The replicated state machine that consensus orders blocks for (ABCI 2.0 shape).

    Call order for each height: prepare_proposal (proposer only) / process_proposal (others,
    possibly several times and for several rounds), then exactly once finalize_block and commit.
    After a crash between finalize_block and commit, consensus replays the height: finalize_block
    must therefore restart from the last committed state.
    """

    @abstractmethod
    async def info(self) -> AppInfo:
        """Last committed height and block hash, and (at height 0) the genesis validators."""

    @abstractmethod
    async def check_tx(self, tx: bytes) -> CheckTxResult:
        """Admission check for the mempool; never changes committed state."""

    @abstractmethod
    async def prepare_proposal(self, request: PrepareProposalRequest) -> ProposedBlock:
        """Build a block from pending transactions and return it with its hash."""

    @abstractmethod
    async def process_proposal(self, request: ProcessProposalRequest) -> bool:
        """True to accept (prevote) the block, False to reject (prevote nil)."""

    @abstractmethod
    async def finalize_block(self, request: FinalizeBlockRequest) -> FinalizeBlockResult:
        """Execute the decided block; return results and validator-set updates."""

    @abstractmethod
    async def commit(self) -> None:
        """Persist the state produced by the last finalize_block (atomically)."""

    @abstractmethod
    async def query(self, path: str, data: bytes) -> QueryResult:
        """Read committed state (used by RPC and tests)."""


# --- network boundary ---------------------------------------------------------------------


class TransportAPI(ABC):
    """How consensus reaches its peers. Delivery may be lossy and reordered (gossip): the driver
    retransmits its current votes and proposal and answers stale peers with a `Decision`, so an
    implementation need not guarantee delivery. It must not deliver our own broadcasts back.

    Before relaying, an implementation should drop what fails `decode_message` and, for votes
    and proposals, `.verify()` (signature matches the named validator); membership in the
    validator set is checked by consensus.
    """

    @abstractmethod
    async def broadcast(self, message: ConsensusMessage) -> None:
        """Send a Proposal, Vote, DuplicateVoteEvidence or Decision to all peers (best effort,
        should not block for long: drop rather than wait on a slow peer)."""

    @abstractmethod
    async def receive(self) -> ConsensusMessage:
        """Wait for the next message from any peer (already decoded)."""


# --- signing ------------------------------------------------------------------------------


class DoubleSignError(RuntimeError):
    """The signer refused: signing would conflict with something it already signed."""


class SignerAPI(ABC):
    """A validator's key plus its last-signed guard (CometBFT's FilePV).

    It refuses to sign anything at a (height, round, step) lower than the last one it signed,
    and at the same (height, round, step) anything but the identical payload (for which it
    returns the earlier signature). The guard is persisted BEFORE the signature is returned.
    """

    @property
    @abstractmethod
    def address(self) -> bytes:
        """The validator address this signer signs for."""

    @abstractmethod
    def sign_vote(self, vote: Vote) -> Vote:
        """`vote` with its signature; raises DoubleSignError if the guard forbids it."""

    @abstractmethod
    def sign_proposal(self, proposal: Proposal) -> Proposal:
        """`proposal` with its signature; raises DoubleSignError if the guard forbids it."""

    @property
    def double_sign_for_tests(self) -> bool:
        """Test-only switch: when True the driver also signs a conflicting prevote each round."""
        return False

    def sign_conflicting_vote_for_tests(self, vote: Vote) -> Vote:
        """Sign bypassing the guard; only signers built with the test switch implement it."""
        raise DoubleSignError("this signer does not double-sign")


# --- storage ------------------------------------------------------------------------------


class ConsensusStoreAPI(ABC):
    """A minimal ordered key-value store. `write_batch` must be atomic.

    With `sync=True` (the default) the batch, and every write before it, must be durable
    (fsynced) when the call returns; with `sync=False` it may sit in OS buffers (it survives
    a process crash, maybe not a power cut). The driver syncs before it broadcasts anything it
    signed, as CometBFT flushes its WAL before signing.
    """

    @abstractmethod
    def get(self, key: bytes) -> bytes | None: ...

    @abstractmethod
    def write_batch(
        self,
        puts: Sequence[tuple[bytes, bytes]],
        deletes: Sequence[bytes] = (),
        *,
        sync: bool = True,
    ) -> None: ...

    @abstractmethod
    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with `prefix`, in key order."""

    def put(self, key: bytes, value: bytes, *, sync: bool = True) -> None:
        self.write_batch([(key, value)], sync=sync)

    def delete(self, key: bytes) -> None:
        self.write_batch([], [key])

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release the store (no-op by default)."""
