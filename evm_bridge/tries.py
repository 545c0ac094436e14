"""Transaction and receipt tries built in one pass.

py-evm's `make_trie_root_and_nodes` inserts items one by one into a hexary trie, hashing and
re-encoding interior nodes on every insert. The keys here are rlp(index) for 0..n-1, so the
whole trie is known up front: this builds it bottom-up once, hashing each node once. The
root and node set are identical to py-evm's (the tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rlp
from eth.db.trie import make_trie_root_and_nodes
from eth_hash.auto import keccak
from trie.constants import BLANK_NODE_HASH

_SMALL = 64  # below this, py-evm's builder is just as fast


def _nibbles(key: bytes) -> tuple[int, ...]:
    out: list[int] = []
    for byte in key:
        out.append(byte >> 4)
        out.append(byte & 0x0F)
    return tuple(out)


def _hex_prefix(nibbles: Sequence[int], is_leaf: bool) -> bytes:
    flag = 2 if is_leaf else 0
    if len(nibbles) % 2:
        prefixed = [flag + 1, *nibbles]
    else:
        prefixed = [flag, 0, *nibbles]
    return bytes(prefixed[i] * 16 + prefixed[i + 1] for i in range(0, len(prefixed), 2))


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def reference(self, node: list[Any]) -> Any:
        """A node as its parent embeds it: inline if its encoding is under 32 bytes."""
        encoded = rlp.encode(node)
        if len(encoded) < 32:
            return node
        digest = keccak(encoded)
        self.nodes[digest] = encoded
        return digest

    def build(self, items: list[tuple[tuple[int, ...], bytes]], depth: int) -> list[Any]:
        """The node for sorted `items` whose keys agree on their first `depth` nibbles."""
        if len(items) == 1:
            key, value = items[0]
            return [_hex_prefix(key[depth:], True), value]
        # Longest common prefix beyond `depth`.
        first, last = items[0][0], items[-1][0]
        common = depth
        while common < len(first) and common < len(last) and first[common] == last[common]:
            common += 1
        if common > depth:
            child = self.build(items, common)
            return [_hex_prefix(first[depth:common], False), self.reference(child)]
        branch: list[Any] = [b""] * 17
        start = 0
        while start < len(items):
            if len(items[start][0]) == depth:
                branch[16] = items[start][1]
                start += 1
                continue
            nibble = items[start][0][depth]
            end = start
            while end < len(items) and len(items[end][0]) > depth and items[end][0][depth] == nibble:
                end += 1
            branch[nibble] = self.reference(self.build(items[start:end], depth + 1))
            start = end
        return branch


def fast_trie_root_and_nodes(items: Sequence[Any]) -> tuple[bytes, dict[bytes, bytes]]:
    """Root hash and nodes of the trie mapping rlp(i) -> encoding of items[i]."""
    if len(items) < _SMALL:
        small_root, small_nodes = make_trie_root_and_nodes(tuple(items))
        return bytes(small_root), {bytes(k): v for k, v in small_nodes.items()}
    entries = sorted(
        (_nibbles(rlp.encode(index)), item.encode()) for index, item in enumerate(items)
    )
    if not entries:
        return bytes(BLANK_NODE_HASH), {}
    builder = _Builder()
    root_node = builder.build(entries, 0)
    encoded = rlp.encode(root_node)
    root = keccak(encoded)
    builder.nodes[root] = encoded
    return root, builder.nodes
