"""Span attribution: suffix array, matching, weights that are exact and reproducible."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datanets.attribution import AttributionIndex, suffix_array, to_basis_points

DOCS = {
    11: "The heart pumps blood through the arteries and veins of the body every second.",
    12: "Insulin regulates the level of glucose in the blood of patients with diabetes.",
    13: "Aspirin reduces the risk of a stroke in adults over fifty years of age.",
    14: "the blood of the body the blood of the body",
}


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-3, 5), max_size=60))
def test_suffix_array_sorts_suffixes(seq: list[int]) -> None:
    assert suffix_array(seq) == sorted(range(len(seq)), key=lambda i: seq[i:])


def test_copied_sentence_goes_to_its_contribution() -> None:
    index = AttributionIndex(DOCS)
    result = index.attribute("Doctors say Aspirin reduces the risk of a stroke in adults.")
    assert result.weights == {13: 10_000}
    assert [(s.start, s.length) for s in result.spans] == [(2, 9)]


def test_longer_and_rarer_reuse_weighs_more() -> None:
    index = AttributionIndex(DOCS)
    text = ("Insulin regulates the level of glucose and the heart pumps blood through the "
            "arteries and veins of the body.")
    result = index.attribute(text)
    assert set(result.weights) == {11, 12}
    assert result.weights[11] > result.weights[12]  # 10 tokens reused vs 6
    assert sum(result.weights.values()) == 10_000
    assert index.attribute("the blood of the body").weights == {14: 10_000}


def test_shared_spans_are_split_and_exact() -> None:
    # "a b c d" (4 tokens) occurs in 1 and 2; "p q r s t" (5) only in 3; 18 tokens indexed.
    # Scores 4*18/4 = 18, 18 and 5*18/1 = 90: shares 1428.57, 1428.57, 7142.86 of 10,000.
    index = AttributionIndex({1: "x a b c d y", 2: "z a b c d w", 3: "p q r s t u"})
    result = index.attribute("a b c d and p q r s t")
    assert result.weights == {1: 1429, 2: 1428, 3: 7143}
    assert [(s.start, s.length, s.occurrences) for s in result.spans] == [
        (0, 4, {1: 1, 2: 1}), (5, 5, {3: 1})]


def test_no_match_across_contributions_and_no_reuse_gives_nothing() -> None:
    index = AttributionIndex({1: "alpha beta gamma delta", 2: "epsilon zeta eta theta"})
    assert index.attribute("gamma delta epsilon zeta").weights == {}  # spans a boundary
    assert index.attribute("completely unrelated words here").weights == {}
    assert index.attribute("").weights == {}


def test_weights_do_not_depend_on_insertion_order() -> None:
    items = list(DOCS.items())
    text = "the heart pumps blood through the arteries; insulin regulates the level of glucose"
    expected = AttributionIndex(dict(items)).attribute(text, max_contributions=3)
    random.Random(3).shuffle(items)
    assert AttributionIndex(dict(items)).attribute(text, max_contributions=3) == expected


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(1, 10**6), st.fractions(min_value=Fraction(1, 1000),
                                                          max_value=10**6),
                       min_size=1, max_size=80),
       st.integers(1, 64))
def test_basis_points_sum_exactly(scores: dict[int, Fraction], limit: int) -> None:
    weights = to_basis_points(scores, limit)
    assert sum(weights.values()) == 10_000
    assert len(weights) == min(limit, len(scores))
    assert all(w >= 1 for w in weights.values())
    with pytest.raises(ValueError):
        to_basis_points(scores, 65)
