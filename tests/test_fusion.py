"""Fusion helpers: exact RRF scores, tie-breaking, argument checks, near-duplicates, min-max."""

from __future__ import annotations

import math

import pytest

from assistant.retrieval.fusion import mark, minmax, near_duplicates, rrf, shingles


def test_rrf_exact_scores() -> None:
    fused = dict(rrf([["a", "b", "c"], ["b", "d"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 63)
    assert fused["d"] == pytest.approx(1 / 62)
    assert [i for i, _ in rrf([["a", "b", "c"], ["b", "d"]])] == ["b", "a", "d", "c"]


def test_rrf_weights() -> None:
    fused = rrf([["a", "b"], ["b", "a"]], weights=[2.0, 1.0], k=0)
    assert fused == [("a", pytest.approx(2.5)), ("b", pytest.approx(2.0))]


def test_rrf_ties_by_best_rank_then_id() -> None:
    fused = rrf([["b", "a"], ["a", "b"]])
    assert [i for i, _ in fused] == ["a", "b"]  # same score, same best rank -> id order
    fused = rrf([["x"], ["y"]], weights=[1.0, 1.0])
    assert [i for i, _ in fused] == ["x", "y"]
    # With k=0 all three score 1.0: z and q at rank 1 once, w at rank 2 twice (1/2 + 1/2).
    fused = rrf([["z", "w"], ["q", "w"]], k=0)
    assert [s for _, s in fused] == [1.0, 1.0, 1.0]
    assert [i for i, _ in fused] == ["q", "z", "w"]  # best rank first, then id


def test_rrf_duplicate_within_ranking_counts_once() -> None:
    assert dict(rrf([["a", "a", "b"]]))["a"] == pytest.approx(1 / 61)


def test_rrf_zero_weight_ranking_ignored_and_empty_input() -> None:
    assert rrf([["a"], ["b"]], weights=[1.0, 0.0]) == [("a", pytest.approx(1 / 61))]
    assert rrf([]) == []
    assert rrf([[], []]) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": [1.0]}, "weights has 1 values for 2 rankings"),
        ({"weights": [1.0, -1.0]}, "-1.0"),
        ({"weights": [1.0, math.nan]}, "nan"),
        ({"k": -1}, "-1"),
    ],
)
def test_rrf_rejects_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rrf([["a"], ["b"]], **kwargs)  # type: ignore[arg-type]


def test_rrf_rejects_string_ranking() -> None:
    with pytest.raises(ValueError, match="string"):
        rrf(["abc"])


PARA = (
    "Le RAMEAU est un laboratoire de recherche empirique consacré aux alliances entre "
    "associations, entreprises, fondations et collectivités territoriales depuis 2006."
)


def test_near_duplicates_drops_later_copies() -> None:
    texts = [
        PARA,
        "Un texte tout à fait différent sur le mécénat de compétences en entreprise.",
        PARA.upper().replace("É", "E").replace(",", " ;"),  # same words after folding
        PARA + " Voir aussi.",  # near-identical
        "Une autre chose.",
    ]
    assert near_duplicates(texts) == [2, 3]


def test_near_duplicates_keeps_distinct_and_short_texts() -> None:
    assert near_duplicates(["ODD 17", "ODD 16", "odd 17"]) == [2]
    assert near_duplicates([]) == []
    assert near_duplicates(["", ""]) == [1]


def test_near_duplicates_threshold() -> None:
    a = "un deux trois quatre cinq six sept huit neuf dix"
    b = "un deux trois quatre cinq six sept huit neuf onze"  # 5 of 7 shingles shared
    assert near_duplicates([a, b], threshold=0.85) == []
    assert near_duplicates([a, b], threshold=0.6) == [1]
    with pytest.raises(ValueError, match=r"1\.5"):
        near_duplicates([a], threshold=1.5)


def test_near_duplicates_with_marks_drops_the_same() -> None:
    """Marks only spare comparisons: the same drops, for every threshold and ``keep``, whether
    a text's mark is known or not."""
    words = [
        "un",
        "deux",
        "trois",
        "quatre",
        "cinq",
        "six",
        "sept",
        "huit",
        "neuf",
        "dix",
        "onze",
        "douze",
        "treize",
    ]
    texts = [PARA, PARA + " Voir aussi.", PARA.upper(), "ODD 17", "odd 17", ""]
    texts += [" ".join(words[:n]) for n in range(4, 14)]
    texts += [" ".join([*words[:n], "autre"]) for n in range(4, 14)]
    known = {t: mark(shingles(t)) for t in texts[::2]}
    for threshold in (0.3, 0.6, 0.75, 0.85, 0.95, 1.0):
        for keep in (None, 3, 10):
            plain = near_duplicates(texts, threshold=threshold, keep=keep)
            assert plain == near_duplicates(
                texts, threshold=threshold, keep=keep, mark_of=known.get
            )
    assert near_duplicates(texts, mark_of=known.get)  # the copies above are found


def test_minmax() -> None:
    assert minmax([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5]
    assert minmax([]) == []
    assert minmax([5.0, 5.0]) == [1.0, 1.0]
    with pytest.raises(ValueError, match="inf"):
        minmax([1.0, math.inf])


def test_near_duplicates_can_stop_once_enough_are_kept() -> None:
    """``keep=k``: the first k kept are the same as without it, every later item is dropped."""
    base = "la convention de partenariat fixe les engagements de chaque partenaire pour trois ans"
    texts = [
        base,
        base + ".",  # a copy of 0
        "le comité de pilotage se réunit chaque trimestre afin de suivre les actions menées",
        "une évaluation partagée mesure l'impact sur le territoire et la relation entre acteurs",
        "le mécénat de compétences met des salariés au service d'une association partenaire",
    ]
    assert near_duplicates(texts) == [1]
    assert near_duplicates(texts, keep=2) == [1, 3, 4]
    assert near_duplicates(texts, keep=10) == [1]
    assert near_duplicates(texts, keep=0) == [0, 1, 2, 3, 4]
