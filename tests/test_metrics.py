"""Evaluation metrics: exact values on small cases."""

from __future__ import annotations

import pytest

from assistant.evaluation.metrics import (
    dedupe_keep_order,
    fact_coverage,
    percentile,
    recall_at_k,
    reciprocal_rank,
)


def test_recall_at_k() -> None:
    ranked = ["d3", "d1", "d2"]
    assert recall_at_k(ranked, {"d1"}, k=2) == 1.0
    assert recall_at_k(ranked, {"d1"}, k=1) == 0.0
    assert recall_at_k(ranked, {"d9", "d2"}, k=3) == 1.0
    assert recall_at_k([], {"d1"}, k=5) == 0.0
    assert recall_at_k(ranked, ["d3"], k=10) == 1.0


def test_recall_rejects_bad_args() -> None:
    with pytest.raises(ValueError, match="0"):
        recall_at_k(["a"], {"a"}, k=0)
    with pytest.raises(ValueError, match="gold is empty"):
        recall_at_k(["a"], set(), k=1)


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(["a", "b", "c"], {"a"}) == 1.0
    assert reciprocal_rank(["a", "b", "c"], {"c", "b"}) == 0.5
    assert reciprocal_rank(["a", "b", "c", "d"], {"d"}) == 0.25
    assert reciprocal_rank(["a"], {"z"}) == 0.0
    with pytest.raises(ValueError, match="gold is empty"):
        reciprocal_rank(["a"], [])


def test_dedupe_keep_order() -> None:
    assert dedupe_keep_order(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert dedupe_keep_order(iter([])) == []


@pytest.mark.parametrize(
    ("answer", "fact"),
    [
        ("Le budget est de 1,5 M€.", "1,5 M€"),
        ("Le budget est de 1,5 million d'euros.", "1,5 M€"),
        ("Le budget est de 1,5 millions d’euros.", "1,5 M€"),
        ("Budget : 1.5 M€", "1,5 million d'euros"),
        ("Environ 1 500 € par an", "1500 €"),
        ("soit 20 pour cent des entreprises", "20 %"),
        ("Créé en 2006, le Rameau est un laboratoire.", "Le RAMEAU a été créé en 2006"),
        ("Voir l'ODD17 des Nations unies.", "ODD 17"),
        ("LES ÉLUS LOCAUX", "élus locaux"),
        ("les collectivites   territoriales", "Collectivités territoriales"),
    ],
)
def test_fact_found(answer: str, fact: str) -> None:
    assert fact_coverage(answer, [fact]) == 1.0


@pytest.mark.parametrize(
    ("answer", "fact"),
    [
        ("Le budget est de 15 millions d'euros.", "1,5 M€"),
        ("Créé en 2016.", "créé en 2006"),
        ("L'ODD 16 porte sur la paix.", "ODD 17"),
        ("Les associations signent une convention.", "mécénat de compétences"),
        ("", "2006"),
    ],
)
def test_fact_missing(answer: str, fact: str) -> None:
    assert fact_coverage(answer, [fact]) == 0.0


def test_fact_coverage_share_and_empty() -> None:
    answer = "Le RAMEAU, créé en 2006, accompagne les alliances. L'ODD 17 les encourage."
    assert fact_coverage(answer, ["2006", "ODD 17", "3 M€", "mécénat"]) == 0.5
    assert fact_coverage(answer, []) == 1.0
    assert fact_coverage("", []) == 1.0


def test_fact_coverage_word_share() -> None:
    answer = "diagnostic, rencontre et convention"
    fact = "diagnostic rencontre convention évaluation"
    assert fact_coverage(answer, [fact]) == 1.0  # 3 of 4 words >= 0.75
    assert fact_coverage(answer, [fact], min_word_share=1.0) == 0.0
    with pytest.raises(ValueError, match="2"):
        fact_coverage(answer, [fact], min_word_share=2)
    with pytest.raises(ValueError, match="not one string"):
        fact_coverage(answer, "2006")


def test_percentile_matches_linear_interpolation() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 95) == pytest.approx(38.5)
    assert percentile([40.0, 10.0, 30.0, 20.0], 50) == 25.0
    assert percentile([7.0], 90) == 7.0
    assert percentile([], 50) == 0.0
    with pytest.raises(ValueError, match="101"):
        percentile(values, 101)
