"""Evaluation metrics: exact values on small cases."""

from __future__ import annotations

import dataclasses

import pytest

from assistant.evaluation.metrics import (
    dedupe_keep_order,
    evidence_found,
    evidence_recall,
    fact_coverage,
    facts_found,
    median,
    percentile,
    recall_at_k,
    reciprocal_rank,
    unsupported_facts,
    word_count,
)
from assistant.evaluation.run import EvalRow, by_type, check_floors, summarize


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


@pytest.mark.parametrize(
    ("answer", "fact"),
    [
        ("La démarche tient en cinq étapes.", "5 étapes"),
        ("La démarche tient en 5 étapes.", "cinq étapes"),
        ("Vingt-deux communes ont signé.", "22 communes"),
        ("Les 17 objectifs", "dix-sept objectifs"),
        ("trente et un ans", "31 ans"),
    ],
)
def test_number_words_match_digits_both_ways(answer: str, fact: str) -> None:
    assert fact_coverage(answer, [fact]) == 1.0


def test_number_words_keep_numbers_exact() -> None:
    assert fact_coverage("La démarche tient en six étapes.", ["5 étapes"]) == 0.0
    assert fact_coverage("La démarche tient en 6 étapes.", ["cinq étapes"]) == 0.0
    # « un » / « une » are articles, not the number 1
    assert fact_coverage("Une alliance locale", ["1 alliance"]) == 0.0
    assert fact_coverage("Le neuvième ODD", ["9 ODD"]) == 0.0  # « neuvième » is not « neuf »


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


def test_evidence_recall_is_literal_after_folding() -> None:
    passages = ["La mission était co-pilotée par la députée\nCathy  RACON-BOUZON.", "Créé en 2020."]
    facts = ["Cathy Racon-Bouzon", "2020", "Charles-Benoît Heidsieck"]
    assert evidence_found(passages, facts) == [True, True, False]
    assert evidence_recall(passages, facts) == pytest.approx(2 / 3)
    assert evidence_recall(["Élaborée à l’automne"], ["elaboree a l'automne"]) == 1.0
    # literal, unlike fact_coverage: a unit written another way is not found in the passages
    assert evidence_recall(["1,5 million d'euros"], ["1,5 M€"]) == 0.0
    assert evidence_recall([], ["x"]) == 0.0
    assert evidence_recall(["a"], []) == 1.0
    with pytest.raises(ValueError):
        evidence_found("one passage", ["x"])


def test_facts_found_agrees_with_fact_coverage() -> None:
    answer = "Le fonds a été créé en 2020 avec la Fondation Total."
    facts = ["2020", "Fondation Total", "3 M€"]
    assert facts_found(answer, facts) == [True, True, False]
    assert fact_coverage(answer, facts) == pytest.approx(2 / 3)


def test_word_count_and_median() -> None:
    assert word_count("L'ODD 17, lui, porte [1] sur les co-pilotes.") == 7
    assert word_count("") == 0
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0]) == 1.5
    assert median([]) == 0.0


def _row(
    kind: str, answerable: bool, grounded: bool, found: int, missing: int, evid: int
) -> EvalRow:
    facts = [f"f{i}" for i in range(found + missing)]
    return EvalRow(
        id=kind, answerable=answerable, grounded=grounded, ranked_docs=["a"], ranked_pages=[],
        gold_docs=["a"] if answerable else [], gold_pages=[], also_docs=[], also_pages=[],
        fact_coverage=found / len(facts) if facts and grounded else 0.0, seconds=0.1,
        answer="un deux trois" if grounded else "", type=kind, facts_found=facts[:found],
        facts_missing=facts[found:], evidence_found=facts[:evid],
        evidence_recall=evid / len(facts) if facts else 1.0, answer_words=3 if grounded else 0,
    )  # fmt: skip


def test_summary_and_by_type() -> None:
    rows = [
        _row("list", True, True, 1, 1, 2),
        _row("list", True, True, 2, 0, 2),
        _row("who", True, False, 0, 1, 1),
        _row("unanswerable", False, False, 0, 0, 0),
        _row("unanswerable", False, True, 0, 0, 0),
    ]
    summary = summarize(rows)
    assert summary["fact_coverage"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert summary["fully_answered_rate"] == pytest.approx(1 / 3)
    assert summary["evidence_recall@5"] == pytest.approx(1.0)
    assert summary["answer_words_p50"] == 3.0
    assert summary["abstention_accuracy"] == 0.5
    types = by_type(rows)
    assert list(types) == ["list", "unanswerable", "who"]
    assert types["list"]["fact_coverage"] == pytest.approx(0.75)
    assert types["list"]["fully_answered_rate"] == 0.5
    assert types["who"]["answered_rate"] == 0.0
    assert types["unanswerable"] == {"questions": 2, "abstention_accuracy": 0.5}
    floors = {"fact_coverage": 0.8, "evidence_recall@5": 0.9}
    assert check_floors(summary, floors) == ["fact_coverage = 0.500 < floor 0.800"]


def test_unsupported_facts_are_read_from_the_delivered_answer() -> None:
    cited = [
        "Fiche Brindille\nLa coopérative Brindille réunit 40 maraîchers de la Drôme.",
        "Adhésion\nUne ferme paie 120 euros par an.",
    ]
    answer = (
        "Les sources sont en français ; cette réponse aussi :\n"  # no marker: not checked
        "La coopérative Brindille réunit 40 maraîchers de la Drôme. [1]\n"
        "1. Une ferme de l'Ardèche paie 150 euros. [2]\n"
        "2. Elle livre Valence. [3]"  # a marker past the citations: nothing supports it
    )
    assert unsupported_facts(answer, cited) == ["150", "Ardèche", "Valence"]
    assert unsupported_facts("Une ferme paie 120 euros par an. [2]", cited) == []
    # the fact must be in the passage the unit cites, not in another one
    assert unsupported_facts("Il y a 40 maraîchers. [2]", cited) == ["40"]
    rows = [
        dataclasses.replace(_row("list", True, True, 1, 1, 2), kind="local-llm", drafted=3,
                            unsupported=["150", "Ardèche"]),
        dataclasses.replace(_row("who", True, True, 1, 1, 1), kind="local-llm", drafted=1),
        dataclasses.replace(_row("who", True, True, 1, 1, 1), drafted=2, unsupported=["x"]),
    ]  # fmt: skip
    summary = summarize(rows)  # the extractive fallback (third row) is not the model's answer
    assert (summary["unsupported_facts"], summary["answers_with_unsupported_facts"]) == (2, 1)
