"""A seen-cache of message hashes with expiry, so every message is relayed at most once.

Each entry also remembers which peers already have the message (they sent it to us, or we
sent it to them), so a later copy is passed on only to peers that connected since.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class SeenCache:
    """Remembers keys for `ttl` seconds, holding at most `max_entries` (oldest evicted first)."""

    def __init__(
        self, ttl: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl <= 0 or max_entries <= 0:
            raise ValueError("ttl and max_entries must be positive")
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, set[Hashable]]] = OrderedDict()

    def _prune(self, now: float) -> None:
        while self._entries:
            key, (expires, _peers) = next(iter(self._entries.items()))
            if expires > now and len(self._entries) <= self._max:
                break
            del self._entries[key]

    def __contains__(self, key: bytes) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry[0] > self._clock()

    def add(self, key: bytes) -> bool:
        """Insert `key`; False when it was already present and unexpired."""
        now = self._clock()
        if key in self:
            return False
        self._entries.pop(key, None)
        self._entries[key] = (now + self._ttl, set())
        self._prune(now)
        return True

    def known_by(self, key: bytes) -> set[Hashable]:
        """The (mutable) set of peers known to have `key`; empty for an unknown key."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] > self._clock() else set()

    def __len__(self) -> int:
        return len(self._entries)
