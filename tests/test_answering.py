"""The extractive answerer's pure parts and its choices, with deterministic embeddings."""

from __future__ import annotations

from typing import Any

from conftest import HashEmbeddings

from assistant.answering.extractive import (
    DECLINE,
    ExtractiveAnswerer,
    split_units,
)
from assistant.indexing.store import StoredChunk
from assistant.retrieval.hybrid import Retrieval, Scored
from assistant.types import Answer

STEPS = """La démarche en cinq étapes

Le guide décrit un processus en cinq étapes pour les partenariats entre entreprises et associations.
1. Préparer l'entreprise : clarifier ses motivations, désigner un porteur, obtenir le
soutien de la direction.
2. Préparer le partenariat : identifier une association, vérifier l'intérêt commun.
3. Contractualiser : rédiger et signer une convention.
Les intitulés suivent le guide ; les précisions sont
une interprétation."""


def test_split_units_keeps_wrapped_list_items_whole_and_headings_apart() -> None:
    units = split_units(STEPS)
    assert units[0] == ("La démarche en cinq étapes", False)
    assert units[2] == (
        "1. Préparer l'entreprise : clarifier ses motivations, désigner un porteur, obtenir "
        "le soutien de la direction.",
        True,
    )
    assert [is_item for _, is_item in units].count(True) == 3
    assert units[-1] == (
        "Les intitulés suivent le guide ; les précisions sont une interprétation.",
        False,
    )


def _retrieval(question: str, texts: list[str], dense: float = 0.95) -> Retrieval:
    emb = HashEmbeddings()
    results = [
        Scored(
            chunk=StoredChunk(
                f"c{i}", text, {"source": f"doc{i}.md", "title": f"Doc {i}", "kind": "autre"}
            ),
            fused=1.0 / (i + 1),
            dense=dense,
            bm25=1.0,
            dense_rank=i + 1,
            bm25_rank=i + 1,
        )
        for i, text in enumerate(texts)
    ]
    return Retrieval(question, emb.embed_query(question), results, lambda term: 1)


def _answer(question: str, texts: list[str], threshold: float = 0.5, **kwargs: Any) -> Answer:
    """The extractive answer (hashing embeddings) to ``question`` over passages ``texts``."""
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=threshold, **kwargs)
    return answerer.answer(question, _retrieval(question, texts))


def test_steps_question_quotes_the_intro_and_the_whole_list() -> None:
    question = "Quelles sont les cinq étapes du processus pour les partenariats ?"
    answer = _answer(question, [STEPS])
    assert answer.grounded
    framing, *lines = answer.text.split("\n")
    assert framing == "D'après « Doc 0 » :"  # one line built from the title, never invented
    assert lines[0].startswith("Le guide décrit un processus en cinq étapes")
    assert [ln[:2] for ln in lines[1:]] == ["1.", "2.", "3."]
    assert all(ln.endswith("[1]") for ln in lines)
    assert answer.citations[0].source == "doc0.md"


def test_weak_evidence_declines_and_suggests_only_documents_on_the_subject() -> None:
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.9)
    question = "Quelles sont les étapes ?"
    answer = answerer.answer(question, _retrieval(question, [STEPS, "Autre texte ici."], 0.5))
    assert not answer.grounded
    assert answer.text.startswith(DECLINE) and "Documents proches : Doc 0." in answer.text
    # "Autre texte ici." shares nothing with the question: it is not suggested
    assert [h.source for h in answer.citations] == ["doc0.md"]
    assert answer.related == answer.citations


def test_value_question_quotes_the_sentence_that_gives_the_value() -> None:
    text = (
        "Le fonds soutient les projets d'alliance dans les territoires depuis 2020.\n\n"
        "Il a accompagné une trentaine de projets de coopération territoriale."
    )
    question = "Combien de projets le fonds a-t-il soutenus ?"
    answer = _answer(question, [text], max_sentences=1)
    assert answer.grounded and "trentaine de projets" in answer.text


def test_headings_tails_and_questions_are_never_quoted() -> None:
    text = (
        "Évaluer un partenariat et son impact\n"
        "ici, est la fin d'une phrase coupée par le découpage en passages.\n"
        "Évaluer un partenariat reste une pratique minoritaire selon le\n"
        "MOOC de l'ESSEC, qui cite les chiffres de l'Observatoire.\n"
        "6. Recommanderiez-vous ce partenariat à une structure comparable ?"
    )
    quotable = [u for u, is_item in split_units(text) if is_item is False]
    assert quotable[-1] == (
        "Évaluer un partenariat reste une pratique minoritaire selon le MOOC de l'ESSEC, qui "
        "cite les chiffres de l'Observatoire."
    )
    question = "Évaluer un partenariat, est-ce une pratique minoritaire ?"
    answer = _answer(question, [text])
    assert answer.grounded
    assert "son impact [1]" not in answer.text  # the heading
    assert not answer.text.startswith("ici")  # the cut tail
    assert "Recommanderiez" not in answer.text  # a question


def test_numbered_section_titles_and_heading_lines_are_not_units() -> None:
    text = (
        "3. La « prime à l'alliance »\n"
        "3.1 De quoi parle-t-on ?\n"
        "La « prime à l'alliance » désigne le surcoût d'ingénierie qu'il faut financer.\n\n"
        "3.5 Janvier 2023 : la première étude d'impact du « faire alliance »\n"
        "En janvier 2023, Le RAMEAU publie la première étude d'impact.\n\n"
        "Article 3 bis — Engagements de la Collectivité (facultatif)\n"
        "La Collectivité s'engage à :\n"
        "- faciliter la mise en relation avec les acteurs du territoire ;\n\n"
        "Les étapes :\n1. Fixer le cap\n2. Choisir les partenaires\n3. Signer\n"
    )
    units = [u for u, _ in split_units(text)]
    assert units == [
        "3.1 De quoi parle-t-on ?",  # a question: split_units keeps it, _is_useful drops it
        "La « prime à l'alliance » désigne le surcoût d'ingénierie qu'il faut financer.",
        "En janvier 2023, Le RAMEAU publie la première étude d'impact.",
        "La Collectivité s'engage à :",
        "- faciliter la mise en relation avec les acteurs du territoire ;",
        "Les étapes :",
        "1. Fixer le cap",  # an unpunctuated list stays: its numbers follow each other
        "2. Choisir les partenaires",
        "3. Signer",
    ]
    question = "C'est quoi la prime à l'alliance et l'étude d'impact de janvier 2023 ?"
    answer = _answer(question, [text])
    assert answer.grounded and "surcoût d'ingénierie" in answer.text
    assert "3. La" not in answer.text and "3.5 Janvier" not in answer.text


def test_a_quote_followed_by_a_parenthesis_does_not_end_the_sentence() -> None:
    text = (
        "Pour démarrer, le guide pratique « ODD & Collectivités » (Comité 21 et 14 partenaires, "
        "novembre 2019) est un bon point d'entrée. Il a été suivi « Par ailleurs » Une autre."
    )
    assert [u for u, _ in split_units(text)] == [
        "Pour démarrer, le guide pratique « ODD & Collectivités » (Comité 21 et 14 partenaires, "
        "novembre 2019) est un bon point d'entrée.",
        "Il a été suivi « Par ailleurs »",
        "Une autre.",
    ]


def test_the_same_fact_from_two_documents_is_quoted_once() -> None:
    first = "Le rapport a été remis à Gabriel Attal le 7 mai 2020, en pleine crise sanitaire."
    second = "Le 7 mai 2020, en pleine crise sanitaire, le rapport est remis à Gabriel Attal."
    other = "Il dresse un état des lieux et propose 21 mesures pour les alliances."
    question = "Qu'est-ce qui a été remis à Gabriel Attal le 7 mai 2020 ?"
    answer = _answer(question, [first + " " + other, second])
    assert answer.grounded
    assert (first in answer.text) != (second in answer.text)


def test_a_sentence_opening_on_a_pronoun_comes_with_the_one_before() -> None:
    text = (
        "La proposition de loi n'a pas été débattue en séance au cours de la législature "
        "2017-2022, faute de place dans l'agenda parlementaire. Elle n'a donc jamais été "
        "adoptée, et le droit d'alliance d'intérêt général n'existe pas dans le droit positif."
    )
    question = "Le droit d'alliance d'intérêt général a-t-il été adopté ?"
    answer = _answer(question, [text], max_sentences=1)
    assert answer.grounded
    assert answer.text.split("\n")[1].startswith("La proposition de loi n'a pas été débattue")
    assert "Elle n'a donc jamais été adoptée" in answer.text


def test_a_number_wrapped_to_the_start_of_a_line_is_not_a_list_item() -> None:
    text = (
        "Les sources publiques citent plusieurs démarches accompagnées par le\n"
        "Fonds ODD\n"
        "17. Elles montrent que le fonds a surtout soutenu des têtes de réseau :\n"
        "- le référentiel des maisons des associations, porté par le RNMA ;\n"
        "- le programme des territoires, porté par le RNET.\n\n"
        "Liste de contrôle\n2. Chaque Partie a relu la convention.\n3. Les annexes sont jointes."
    )
    units = split_units(text)
    assert units[0] == (
        "Les sources publiques citent plusieurs démarches accompagnées par le Fonds ODD 17.",
        False,
    )
    assert units[1] == (
        "Elles montrent que le fonds a surtout soutenu des têtes de réseau :",
        False,
    )
    assert units[-2:] == [
        ("2. Chaque Partie a relu la convention.", True),  # after a heading: a list
        ("3. Les annexes sont jointes.", True),
    ]


def test_a_sentence_announcing_a_list_is_quoted_with_its_items() -> None:
    text = (
        "Le fonds ODD 17 a soutenu des têtes de réseau dans plusieurs territoires. Ces têtes de "
        "réseau soutenues par le fonds ODD 17 ont diffusé des outils, en particulier :\n"
        "- le référentiel des maisons des associations, porté par le RNMA ;\n"
        "- le programme des territoires, porté par le RNET."
    )
    question = "Quelles têtes de réseau le fonds ODD 17 a-t-il soutenues ?"
    answer = _answer(question, [text], max_sentences=2)
    assert answer.grounded and "en particulier : [1]" in answer.text
    assert "RNMA" in answer.text and "RNET" in answer.text
