"""The incremental version tree: same root as from the leaves, proofs that verify."""

from __future__ import annotations

from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from datanets import merkle


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 70), st.data())
def test_incremental_root_matches_and_proofs_verify(n: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf(i + 1, keccak(i.to_bytes(4, "big"))) for i in range(n)]
    branch: dict[int, bytes] = {}
    roots = []
    for i, item in enumerate(leaves):
        merkle.insert(lambda h: branch.get(h, b"\x00" * 32), branch.__setitem__, i, item)
        roots.append(merkle.root_from_branch(lambda h: branch.get(h, b"\x00" * 32), i + 1))
    # A version is taken right after its prefix was inserted: compare prefix by prefix.
    for count in range(1, n + 1):
        assert roots[count - 1] == merkle.merkle_root(leaves[:count])
    assert merkle.merkle_root([]) == merkle.ZERO_HASHES[merkle.DEPTH]
    if n:
        index = data.draw(st.integers(0, n - 1))
        root = merkle.merkle_root(leaves)
        proof = merkle.merkle_proof(leaves, index)
        assert merkle.verify_proof(root, leaves[index], index, proof)
        assert not merkle.verify_proof(root, keccak(b"forged"), index, proof)
