"""The extractive answerer's pure parts and its choices, with deterministic embeddings."""

from __future__ import annotations

from conftest import HashEmbeddings

from assistant.answering import DECLINE, ExtractiveAnswerer, compose, format_citation, split_units
from assistant.retrieval import Retrieval, Scored
from assistant.store import StoredChunk
from assistant.types import Hit

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


def test_compose_puts_markers_after_each_unit_and_items_on_their_own_lines() -> None:
    text = compose([("Une phrase.", 1), ("1. Une étape.", 1), ("2. Une autre.", 2)])
    assert text == "Une phrase. [1]\n1. Une étape. [1]\n2. Une autre. [2]"


def test_format_citation() -> None:
    hit = Hit("t", "boite-a-outils/guide.pdf", "Guide", "boite-a-outils", 4, 0.1, "c1")
    assert format_citation(2, hit) == "[2] Guide, p. 4 (boite-a-outils) — boite-a-outils/guide.pdf"


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


def test_steps_question_quotes_the_intro_and_the_whole_list() -> None:
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5)
    question = "Quelles sont les cinq étapes du processus pour les partenariats ?"
    answer = answerer.answer(question, _retrieval(question, [STEPS]))
    assert answer.grounded
    lines = answer.text.split("\n")
    assert lines[0].startswith("Le guide décrit un processus en cinq étapes")
    assert [ln[:2] for ln in lines[1:]] == ["1.", "2.", "3."]
    assert all(ln.endswith("[1]") for ln in lines)
    assert answer.citations[0].source == "doc0.md"


def test_weak_evidence_declines_and_suggests_documents() -> None:
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.9)
    question = "Quelles sont les étapes ?"
    answer = answerer.answer(question, _retrieval(question, [STEPS, "Autre texte ici."], 0.5))
    assert not answer.grounded
    assert answer.text.startswith(DECLINE)
    assert [h.source for h in answer.citations] == ["doc0.md", "doc1.md"]


def test_value_question_quotes_the_sentence_that_gives_the_value() -> None:
    text = (
        "Le fonds soutient les projets d'alliance dans les territoires depuis 2020.\n\n"
        "Il a accompagné une trentaine de projets de coopération territoriale."
    )
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5, max_sentences=1)
    question = "Combien de projets le fonds a-t-il soutenus ?"
    answer = answerer.answer(question, _retrieval(question, [text]))
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
    answerer = ExtractiveAnswerer(HashEmbeddings(), threshold=0.5)
    question = "Évaluer un partenariat, est-ce une pratique minoritaire ?"
    answer = answerer.answer(question, _retrieval(question, [text]))
    assert answer.grounded
    assert "son impact [1]" not in answer.text  # the heading
    assert not answer.text.startswith("ici")  # the cut tail
    assert "Recommanderiez" not in answer.text  # a question
