"""Span attribution: which datanet contributions a model's output reuses, as weights.

The approach of infini-gram, at the scale of a datanet: the contributions a model was
trained on are tokenised and indexed with one suffix array (documents separated by unique
sentinels, so no match crosses two contributions). For an output, every position's longest
match in the index is found by narrowing the suffix array range token by token; maximal
matches of at least `min_span` tokens are kept. A kept span of length L that occurs `occ`
times in the index, over N tokens in all, scores L * N / occ (longer and rarer reuse counts
more) and is shared among the contributions holding it by their occurrence counts. Scores
are exact fractions and the basis points are apportioned by largest remainder with ties to
the lower contribution id, so anyone holding the same contributions reproduces the same
weights bit for bit, and a receipt's weights can be checked and challenged.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

BPS = 10_000
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Words and single punctuation marks; whitespace only separates."""
    return _TOKEN.findall(text)


def suffix_array(seq: Sequence[int]) -> list[int]:
    """Start positions of `seq`'s suffixes in sorted order (prefix doubling, O(n log^2 n))."""
    n = len(seq)
    if n == 0:
        return []
    values = sorted(set(seq))
    dense = {v: i for i, v in enumerate(values)}
    rank = [dense[v] for v in seq]
    order = list(range(n))
    k = 1
    while True:
        key = [(rank[i], rank[i + k] if i + k < n else -1) for i in range(n)]
        order.sort(key=key.__getitem__)
        new_rank = [0] * n
        for j in range(1, n):
            new_rank[order[j]] = new_rank[order[j - 1]] + (key[order[j]] != key[order[j - 1]])
        rank = new_rank
        if rank[order[-1]] == n - 1 or k >= n:
            return order
        k *= 2


@dataclass(frozen=True)
class Span:
    """A maximal reuse: `length` output tokens from `start`, found in these contributions."""

    start: int
    length: int
    occurrences: dict[int, int]  # contribution id -> times the span occurs in it


@dataclass(frozen=True)
class Attribution:
    weights: dict[int, int]  # contribution id -> basis points, summing to 10,000 (or empty)
    spans: list[Span]


class AttributionIndex:
    """A suffix-array index over the contributions of the datanet versions a model names."""

    def __init__(self, contributions: Mapping[int, str], min_span: int = 4) -> None:
        if min_span < 1:
            raise ValueError("min_span must be at least 1")
        self.min_span = min_span
        self.vocab: dict[str, int] = {}
        self.ids = sorted(contributions)  # order-independent: by contribution id
        seq: list[int] = []
        self.starts: list[int] = []
        for doc, cid in enumerate(self.ids):
            self.starts.append(len(seq))
            for token in tokenize(contributions[cid]):
                seq.append(self.vocab.setdefault(token, len(self.vocab)))
            seq.append(-(doc + 1))  # a sentinel unique to this document
        self.seq = seq
        self.sa = suffix_array(seq)
        self.total_tokens = len(seq) - len(self.ids)

    def _narrow(self, lo: int, hi: int, depth: int, token: int) -> tuple[int, int]:
        """The sub-range of sa[lo:hi] (suffixes sharing `depth` tokens) whose next is `token`."""
        seq, sa, n = self.seq, self.sa, len(self.seq)

        def at(j: int) -> int:
            p = sa[j] + depth
            return seq[p] if p < n else -(1 << 62)

        a, b = lo, hi
        while a < b:  # first suffix whose token >= `token`
            mid = (a + b) // 2
            if at(mid) < token:
                a = mid + 1
            else:
                b = mid
        first = a
        b = hi
        while a < b:  # first suffix whose token > `token`
            mid = (a + b) // 2
            if at(mid) <= token:
                a = mid + 1
            else:
                b = mid
        return first, a

    def longest_match(self, tokens: Sequence[int], start: int) -> tuple[int, int, int]:
        """(length, lo, hi): the longest prefix of tokens[start:] in the index and its range."""
        lo, hi, length = 0, len(self.sa), 0
        while start + length < len(tokens) and tokens[start + length] >= 0:
            nlo, nhi = self._narrow(lo, hi, length, tokens[start + length])
            if nlo >= nhi:
                break
            lo, hi, length = nlo, nhi, length + 1
        return length, lo, hi

    def attribute(self, text: str, max_contributions: int = 64) -> Attribution:
        """Weights over the contributions `text` reuses (empty when it reuses none)."""
        tokens = [self.vocab.get(t, -1) for t in tokenize(text)]
        spans: list[Span] = []
        scores: dict[int, Fraction] = {}
        covered = 0  # end of the last kept span: only maximal matches count
        for i in range(len(tokens)):
            length, lo, hi = self.longest_match(tokens, i)
            if length < self.min_span or i + length <= covered:
                continue
            covered = i + length
            counts: dict[int, int] = {}
            for j in range(lo, hi):
                cid = self.ids[bisect_right(self.starts, self.sa[j]) - 1]
                counts[cid] = counts.get(cid, 0) + 1
            occ = hi - lo
            spans.append(Span(i, length, counts))
            for cid, k in counts.items():
                scores[cid] = scores.get(cid, Fraction(0)) + Fraction(
                    length * self.total_tokens * k, occ * occ)
        return Attribution(to_basis_points(scores, max_contributions), spans)


def to_basis_points(scores: Mapping[int, Fraction], limit: int = 64) -> dict[int, int]:
    """The top `limit` scores (ties to the lower id) as basis points summing to 10,000, by
    largest remainder (ties to the lower id); every kept contribution gets at least 1."""
    if not 0 < limit <= 64:
        raise ValueError("limit must be within 1..64 (the attributions a receipt may name)")
    ranked = sorted(((s, cid) for cid, s in scores.items() if s > 0),
                    key=lambda item: (-item[0], item[1]))
    top = ranked[:limit]
    if not top:
        return {}
    total = sum(s for s, _ in top)
    shares = {cid: s * BPS / total for s, cid in top}
    floors = {cid: max(1, int(share)) for cid, share in shares.items()}
    left = BPS - sum(floors.values())
    order = sorted(shares, key=lambda cid: (-(shares[cid] - int(shares[cid])), cid))
    i = 0
    while left != 0:
        cid = order[i % len(order)]
        if left > 0:
            floors[cid] += 1
            left -= 1
        elif floors[cid] > 1:
            floors[cid] -= 1
            left += 1
        i += 1
    return dict(sorted(floors.items()))
