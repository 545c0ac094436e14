"""A seen-cache of message hashes with expiry, so every message is relayed at most once."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


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
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def _prune(self, now: float) -> None:
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now and len(self._expiry) <= self._max:
                break
            del self._expiry[key]

    def __contains__(self, key: bytes) -> bool:
        expires = self._expiry.get(key)
        return expires is not None and expires > self._clock()

    def add(self, key: bytes) -> bool:
        """Insert `key`; False when it was already present and unexpired."""
        now = self._clock()
        if key in self:
            return False
        self._expiry.pop(key, None)
        self._expiry[key] = now + self._ttl
        self._prune(now)
        return True

    def __len__(self) -> int:
        return len(self._expiry)
