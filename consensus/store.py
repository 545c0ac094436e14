"""Key-value stores behind `ConsensusStoreAPI`, and the typed consensus database over one.

`MemoryStore` is for tests; `LevelDBStore` wraps plyvel (a path, or a DB / prefixed DB the node
already opened, since one process may open a LevelDB directory only once). `ConsensusDB` lays
out what consensus persists: its chain state (last decided height and the validator sets for
the next two heights), the decision (block + commit certificate) and validator set of every
height, evidence, and the write-ahead log of the height in progress.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp

from consensus.abc import ConsensusStoreAPI
from consensus.types import (
    Decision,
    DecodeError,
    DuplicateVoteEvidence,
    ValidatorSet,
    rlp_encode,
)


class MemoryStore(ConsensusStoreAPI):
    """An in-memory ordered store (tests, followers that keep nothing)."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def write_batch(
        self,
        puts: Sequence[tuple[bytes, bytes]],
        deletes: Sequence[bytes] = (),
        *,
        sync: bool = True,
    ) -> None:
        for key in deletes:
            if self._data.pop(key, None) is not None:
                self._keys.pop(bisect.bisect_left(self._keys, key))
        for key, value in puts:
            if key not in self._data:
                bisect.insort(self._keys, key)
            self._data[key] = bytes(value)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        i = bisect.bisect_left(self._keys, prefix)
        matching = []
        while i < len(self._keys) and self._keys[i].startswith(prefix):
            matching.append(self._keys[i])
            i += 1
        for key in matching:  # a snapshot: writes during iteration do not disturb it
            value = self._data.get(key)
            if value is not None:
                yield key, value


class LevelDBStore(ConsensusStoreAPI):
    """plyvel-backed store; batches are atomic and synced to disk."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._owned = False

    @classmethod
    def open(cls, path: str | Path) -> LevelDBStore:
        import plyvel

        store = cls(plyvel.DB(str(path), create_if_missing=True))
        store._owned = True
        return store

    def get(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return None if value is None else bytes(value)

    def write_batch(
        self,
        puts: Sequence[tuple[bytes, bytes]],
        deletes: Sequence[bytes] = (),
        *,
        sync: bool = True,
    ) -> None:
        # LevelDB's synced write fsyncs its log, which holds every earlier write too.
        with self._db.write_batch(transaction=True, sync=sync) as batch:
            for key in deletes:
                batch.delete(key)
            for key, value in puts:
                batch.put(key, value)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.iterator(prefix=prefix):
            yield bytes(key), bytes(value)

    def close(self) -> None:
        if self._owned:
            self._db.close()


# --- typed layout ---------------------------------------------------------------------------

_STATE = b"cs/state"
_DECISION = b"cs/decision/"
_VALSET = b"cs/valset/"
_EVIDENCE_PENDING = b"cs/evidence/pending/"
_EVIDENCE_COMMITTED = b"cs/evidence/committed/"
_WAL = b"cs/wal/"


def _h(height: int) -> bytes:
    return height.to_bytes(8, "big")


@dataclass(frozen=True)
class ChainState:
    """What consensus knows after deciding `height` (0: nothing decided yet).

    `validators` decide `height + 1`; `next_validators` decide `height + 2` (updates returned by
    finalize_block at height h land in the set of h + 2).
    """

    chain_id: int
    height: int
    last_block_hash: bytes
    validators: ValidatorSet
    next_validators: ValidatorSet

    def encode(self) -> bytes:
        return bytes(
            rlp_encode(
                [
                    self.chain_id,
                    self.height,
                    self.last_block_hash,
                    self.validators.encode(),
                    self.next_validators.encode(),
                ]
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> ChainState:
        try:
            f = rlp.decode(data)
            return cls(
                int.from_bytes(f[0], "big"),
                int.from_bytes(f[1], "big"),
                f[2],
                ValidatorSet.decode(f[3]),
                ValidatorSet.decode(f[4]),
            )
        except (DecodeError, ValueError, IndexError, rlp.DecodingError) as exc:
            raise DecodeError(f"corrupt consensus state: {exc}") from exc


class ConsensusDB:
    """Typed access to what consensus persists, over any `ConsensusStoreAPI`."""

    def __init__(self, store: ConsensusStoreAPI) -> None:
        self.store = store

    # chain state
    def load_state(self) -> ChainState | None:
        raw = self.store.get(_STATE)
        return None if raw is None else ChainState.decode(raw)

    def save_state(
        self,
        state: ChainState,
        *,
        extra_puts: Sequence[tuple[bytes, bytes]] = (),
        deletes: Sequence[bytes] = (),
    ) -> None:
        self.store.write_batch([(_STATE, state.encode()), *extra_puts], deletes)

    # decisions (block + certificate per height): what sync serves
    def save_decision(self, decision: Decision, *, sync: bool = True) -> None:
        self.store.put(_DECISION + _h(decision.height), decision.encode(), sync=sync)

    def load_decision(self, height: int) -> Decision | None:
        raw = self.store.get(_DECISION + _h(height))
        return None if raw is None else Decision.decode(raw)

    # validator set that decided each height (for evidence and certificate checks)
    @staticmethod
    def valset_entry(height: int, validators: ValidatorSet) -> tuple[bytes, bytes]:
        return _VALSET + _h(height), validators.encode()

    def load_valset(self, height: int) -> ValidatorSet | None:
        raw = self.store.get(_VALSET + _h(height))
        return None if raw is None else ValidatorSet.decode(raw)

    # evidence
    def add_pending_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        self.store.put(_EVIDENCE_PENDING + evidence.hash(), evidence.encode())

    def pending_evidence(self) -> list[DuplicateVoteEvidence]:
        return [DuplicateVoteEvidence.decode(v) for _, v in self.store.iterate(_EVIDENCE_PENDING)]

    def expired_evidence_keys(self, min_height: int) -> list[bytes]:
        """Keys of pending evidence from below `min_height` (too old to include any more)."""
        return [
            k
            for k, v in self.store.iterate(_EVIDENCE_PENDING)
            if DuplicateVoteEvidence.decode(v).height < min_height
        ]

    def is_evidence_committed(self, evidence_hash: bytes) -> bool:
        return self.store.get(_EVIDENCE_COMMITTED + evidence_hash) is not None

    @staticmethod
    def evidence_committed_entries(
        evidence: Sequence[DuplicateVoteEvidence], height: int
    ) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
        """Batch entries marking `evidence` committed at `height` (puts, deletes)."""
        puts = [(_EVIDENCE_COMMITTED + e.hash(), _h(height)) for e in evidence]
        deletes = [_EVIDENCE_PENDING + e.hash() for e in evidence]
        return puts, deletes

    # write-ahead log of the height in progress
    def wal_append(self, height: int, seq: int, entry: bytes, *, sync: bool = True) -> None:
        self.store.put(_WAL + _h(height) + _h(seq), entry, sync=sync)

    def wal_entries(self, height: int) -> list[bytes]:
        return [v for _, v in self.store.iterate(_WAL + _h(height))]

    def wal_keys_below(self, height: int) -> list[bytes]:
        """WAL keys of heights below `height` (deleted once a height is decided)."""
        return [k for k, _ in self.store.iterate(_WAL) if k[len(_WAL) : len(_WAL) + 8] < _h(height)]
