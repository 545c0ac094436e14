"""The Merkle tree that names a datanet version, kept incrementally as contributions are
accepted (as the Ethereum deposit contract keeps its tree).

A fixed-depth binary tree (depth 32) over the datanet's accepted log, leaves
`keccak(contributionId ‖ contentHash)` in acceptance order, empty leaves zero. Appending a leaf
updates one stored node per level at most, and the root of the first `n` leaves follows from
the stored branch in 32 hashes, so versions cost the same however large a datanet grows.
`merkle_root` / `merkle_proof` / `verify_proof` compute the same from the leaves, off chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eth_hash.auto import keccak

DEPTH = 32
ZERO_HASHES = [b"\x00" * 32]
for _ in range(DEPTH):
    ZERO_HASHES.append(keccak(ZERO_HASHES[-1] + ZERO_HASHES[-1]))


def leaf(contribution_id: int, content_hash: bytes) -> bytes:
    return keccak(contribution_id.to_bytes(32, "big") + content_hash)


def insert(branch_get: Callable[[int], bytes], branch_set: Callable[[int, bytes], None],
           index: int, node: bytes) -> int:
    """Append leaf `node` at position `index`; returns how many branch nodes it wrote (1)."""
    if index >= 1 << DEPTH:
        raise ValueError("the tree is full")
    size = index + 1
    for height in range(DEPTH):
        if size & 1:
            branch_set(height, node)
            return 1
        node = keccak(branch_get(height) + node)
        size >>= 1
    raise AssertionError("unreachable: a full tree was checked above")


def root_from_branch(branch_get: Callable[[int], bytes], count: int) -> bytes:
    """The root over the first `count` leaves, from the branch stored after inserting them."""
    node = ZERO_HASHES[0]
    size = count
    for height in range(DEPTH):
        if size & 1:
            node = keccak(branch_get(height) + node)
        else:
            node = keccak(node + ZERO_HASHES[height])
        size >>= 1
    return node


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The same root computed from the leaves."""
    branch: dict[int, bytes] = {}
    for i, item in enumerate(leaves):
        insert(lambda h: branch[h], branch.__setitem__, i, item)
    return root_from_branch(lambda h: branch.get(h, ZERO_HASHES[0]), len(leaves))


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The 32 sibling hashes from leaf `index` up to the root of `leaves`."""
    level = list(leaves)
    proof = []
    for height in range(DEPTH):
        sibling = index ^ 1
        proof.append(level[sibling] if sibling < len(level) else ZERO_HASHES[height])
        if len(level) % 2:
            level.append(ZERO_HASHES[height])
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        index //= 2
    return proof


def verify_proof(root: bytes, item: bytes, index: int, proof: Sequence[bytes]) -> bool:
    if len(proof) != DEPTH:
        return False
    node = item
    for height, sibling in enumerate(proof):
        node = keccak(sibling + node) if (index >> height) & 1 else keccak(node + sibling)
    return node == root
