"""Peer scores: misbehaviour lowers a peer's score; below a threshold it is banned for a while.

Pure bookkeeping over an injectable clock, so the rules are testable without a network. A
score recovers linearly toward zero, so an honest peer that once relayed a stale message is
not punished forever, while a peer that keeps sending garbage crosses the threshold quickly.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from libp2p.peer.id import ID


class Offense(enum.Enum):
    """What a peer did wrong, with its default penalty."""

    MALFORMED = 25.0  # undecodable frame or message
    OVERSIZED = 50.0  # frame above the size limit (the stream is closed too)
    INVALID = 20.0  # message the validator rejected
    BAD_RESPONSE = 25.0  # malformed answer to one of our requests
    STALLED = 50.0  # did not drain its send queue in time
    WRONG_CHAIN = 1000.0  # different chain id or genesis: never useful


@dataclass
class ScoreParams:
    """Thresholds of the scoring rules (defaults suit a small validator network)."""

    disconnect_below: float = -100.0
    recovery_per_second: float = 1.0
    ban_seconds: float = 300.0


@dataclass
class _Entry:
    score: float = 0.0
    updated: float = 0.0
    offenses: dict[str, int] = field(default_factory=dict)


class PeerScorer:
    """Scores and bans, keyed by peer id."""

    def __init__(
        self, params: ScoreParams | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.params = params or ScoreParams()
        self._clock = clock
        self._entries: dict[ID, _Entry] = {}
        self._banned_until: dict[ID, float] = {}

    def score(self, peer: ID) -> float:
        entry = self._entries.get(peer)
        if entry is None:
            return 0.0
        self._recover(entry)
        return entry.score

    def offenses(self, peer: ID) -> dict[str, int]:
        entry = self._entries.get(peer)
        return dict(entry.offenses) if entry else {}

    def _recover(self, entry: _Entry) -> None:
        now = self._clock()
        elapsed = max(0.0, now - entry.updated)
        entry.score = min(0.0, entry.score + elapsed * self.params.recovery_per_second)
        entry.updated = now

    def penalize(self, peer: ID, offense: Offense, weight: float = 1.0) -> bool:
        """Record an offense; True when the peer has now crossed the threshold and is banned."""
        entry = self._entries.setdefault(peer, _Entry(updated=self._clock()))
        self._recover(entry)
        entry.score -= offense.value * weight
        entry.offenses[offense.name] = entry.offenses.get(offense.name, 0) + 1
        if entry.score < self.params.disconnect_below:
            self.ban(peer)
            return True
        return False

    def ban(self, peer: ID, seconds: float | None = None) -> None:
        duration = self.params.ban_seconds if seconds is None else seconds
        self._banned_until[peer] = self._clock() + duration

    def banned_for(self, peer: ID) -> float:
        """Seconds left on the peer's ban (0 when not banned); an expired ban resets the score."""
        until = self._banned_until.get(peer)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._banned_until[peer]
            self._entries.pop(peer, None)
            return 0.0
        return left

    def is_banned(self, peer: ID) -> bool:
        return self.banned_for(peer) > 0
