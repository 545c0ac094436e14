"""Interfaces between the p2p layer and the node that uses it.

The node implements `SyncProviderAPI` (p2p asks it for status and committed blocks when peers
request them) and registers one validator per gossip kind (p2p asks it whether a message may
be delivered and relayed).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from libp2p.peer.id import ID

from p2p.wire import BlockWithCertificate, ChainStatus


class ValidationResult(enum.Enum):
    """A validator's verdict on a gossip message.

    ACCEPT: deliver locally and relay to other peers once.
    REJECT: the message is invalid; drop it and lower the sender's score.
    IGNORE: drop it without penalty (stale, duplicate, or not yet checkable); not remembered,
    so a later retransmission of the same bytes is judged again.
    """

    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


# A validator gets the message body and the peer that sent it. A validator that raises is
# treated as REJECT: it most likely failed to decode what the peer sent.
Validator = Callable[[bytes, ID], "ValidationResult | Awaitable[ValidationResult]"]


class SyncProviderAPI(ABC):
    """What the node serves to peers: its chain status and its committed blocks."""

    @abstractmethod
    async def get_status(self) -> ChainStatus:
        """Chain id, genesis hash, latest committed height and its block hash."""

    @abstractmethod
    async def get_blocks(self, start: int, count: int) -> list[BlockWithCertificate]:
        """Up to `count` committed blocks from height `start` on, each with the commit
        certificate that finalized it; fewer (or none) where the node has no more."""
