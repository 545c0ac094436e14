"""Key-value stores under the chain: LevelDB (plyvel) on disk, or memory for tests.

py-evm writes state, blocks and receipts through several separate calls. To keep the disk
consistent after `kill -9`, the chain runs over a `BufferedDB`: every write of a block lands in
an in-memory overlay and `flush()` moves the whole overlay to the backing store in ONE atomic
LevelDB write batch. After a crash the disk holds exactly the blocks that were flushed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import plyvel
from eth.abc import AtomicWriteBatchAPI, DatabaseAPI
from eth.db.atomic import AtomicDB, AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB

_DELETED = object()


class StoreLockedError(RuntimeError):
    """The LevelDB directory is already open in another process."""


class LevelDB(BaseAtomicDB):
    """A py-evm atomic database over plyvel. Batches are LevelDB write batches."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = plyvel.DB(str(path), create_if_missing=True)
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(
                    f"{path} is in use by another process (LevelDB lock held)"
                ) from exc
            raise
        self.path = path

    def __getitem__(self, key: bytes) -> bytes:
        value = self._db.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._db.put(key, value)

    def __delitem__(self, key: bytes) -> None:
        if self._db.get(key) is None:
            raise KeyError(key)
        self._db.delete(key)

    def _exists(self, key: bytes) -> bool:
        return self._db.get(key) is not None

    def write_many(self, items: dict[bytes, object]) -> None:
        """Write puts and deletes (value `_DELETED`) in one atomic batch."""
        with self._db.write_batch(transaction=True) as batch:
            for key, value in items.items():
                if value is _DELETED:
                    batch.delete(key)
                else:
                    batch.put(key, value)  # type: ignore[arg-type]

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        with _LevelDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    def close(self) -> None:
        self._db.close()


class _LevelDBWriteBatch(AtomicDBWriteBatch):
    """py-evm's readable write batch, committed as one LevelDB write batch."""

    def _commit(self) -> None:
        target = self._write_target_db
        assert isinstance(target, LevelDB)
        diff = self._diff()
        items: dict[bytes, object] = dict(diff.pending_items())
        items.update({key: _DELETED for key in diff.deleted_keys()})
        target.write_many(items)


class BufferedDB(BaseAtomicDB):
    """A write-back overlay: reads see pending writes, `flush` commits them atomically.

    Not thread-safe; the node touches the chain from one trio task at a time.
    """

    def __init__(self, backing: DatabaseAPI) -> None:
        self.backing = backing
        self._pending: dict[bytes, object] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self._pending.get(key)
        if value is None:
            return self.backing[key]
        if value is _DELETED:
            raise KeyError(key)
        return value  # type: ignore[return-value]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        value = self._pending.get(key)
        if value is None:
            return key in self.backing
        return value is not _DELETED

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        with AtomicDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    def flush(self) -> None:
        """Move every pending write to the backing store in one atomic step."""
        if not self._pending:
            return
        if isinstance(self.backing, LevelDB):
            self.backing.write_many(self._pending)
        else:
            for key, value in self._pending.items():
                if value is _DELETED:
                    if key in self.backing:
                        del self.backing[key]
                else:
                    self.backing[key] = value  # type: ignore[assignment]
        self._pending = {}

    def discard(self) -> None:
        """Drop every pending write (a block that was built but not committed)."""
        self._pending = {}


def memory_db() -> AtomicDB:
    """An in-memory py-evm database, for tests and benchmarks."""
    return AtomicDB()
