"""The Merkle root that names a datanet version: leaves are (contribution id, content hash)."""

from __future__ import annotations

from collections.abc import Sequence

from eth_hash.auto import keccak

EMPTY_ROOT = b"\x00" * 32


def leaf(contribution_id: int, content_hash: bytes) -> bytes:
    return keccak(contribution_id.to_bytes(32, "big") + content_hash)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Pairwise keccak up to one node; an odd last node is carried up unchanged."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [keccak(level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]

