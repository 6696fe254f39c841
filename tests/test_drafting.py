"""What a small model is given (the passages the extractive answer chose, within a budget) and
what of its draft survives the screening before attribution (wrong language, placeholders,
questions), on passages and drafts written for the test, unlike the shipped corpus."""

from __future__ import annotations

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from assistant.answering.attribution import Attributor
from assistant.answering.citations import split_answer
from assistant.answering.drafting import chosen_passages, language_of, screen, screen_reason
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.llm import NOTICE_UNCITED, LLMAnswerer
from assistant.indexing.store import StoredChunk
from assistant.retrieval.results import Retrieval, Scored
from assistant.types import Answer, Hit

FR = "Comment fonctionne la coopérative Brindille ?"
EN = "How does the Brindille cooperative work?"


@pytest.mark.parametrize(
    ("sentence", "question", "reason"),
    [
        ("La coopérative réunit 40 maraîchers de la Drôme.", FR, ""),
        ("The cooperative brings together 40 growers in the Drôme.", FR, "language: en"),
        ("The cooperative brings together 40 growers in the Drôme.", EN, ""),
        ("La coopérative réunit 40 maraîchers de la Drôme.", EN, ""),  # a French quote
        ("l'innovation ;", FR, ""),  # a one-word list item
        ("该合作社每周为学校食堂供货。", FR, "language: other"),
        ("Brindille: 40 maraîchers.", FR, ""),  # too few function words to judge: kept
        ("Réponse : [n]", FR, "placeholder"),
        ('<passage n="1" titre="Doc">', FR, "placeholder"),
        ("La coopérative a été créée en [ANNÉE] par [Votre nom].", FR, "placeholder"),
        ("Lorem ipsum dolor sit amet.", FR, "placeholder"),
        ("Je suis un assistant et je ne peux pas répondre.", FR, "placeholder"),
        ("```", FR, "placeholder"),
        ("Réponds à la question à partir des passages.", FR, "placeholder"),
        ("2.", FR, "placeholder"),
        ("Comment fonctionne la coopérative Brindille ?", FR, "question"),
    ],
)
def test_screen_reason(sentence: str, question: str, reason: str) -> None:
    assert screen_reason(sentence, question) == reason


def test_screen_keeps_lines_and_removes_references_to_passage_numbers() -> None:
    raw = (
        "Selon le passage 2, une ferme signe la charte.\n"
        "1. Elle paie une cotisation (passage 1).\n"
        "2. It is followed by a training day for the farm.\n"
        "Passage 3 :"
    )
    kept, dropped = screen(split_answer(raw), FR)
    assert kept == [["Une ferme signe la charte."], ["1. Elle paie une cotisation."], [], []]
    assert dropped == [
        ("2. It is followed by a training day for the farm.", "language: en"),
        ("Passage 3 :", "placeholder"),
    ]
    assert language_of("Il a le but de coopérer avec elle.") == "fr"  # « a », « but »: French


def _scored(i: int, text: str, section: str = "") -> Scored:
    meta = {"source": f"d{i}.md", "title": f"Doc {i}", "kind": "autre", "section_id": section}
    return Scored(StoredChunk(f"c{i}", text, meta), 1.0 / (i + 1), 0.9, 1.0, i + 1, i + 1)


def _hit(r: Scored) -> Hit:
    return r.to_hit()


def test_the_model_reads_the_chosen_passages_first_within_the_budget() -> None:
    results = [_scored(i, f"Passage {i} " + "mot " * 60) for i in range(4)]  # ~250 chars each
    section_only = StoredChunk(
        "s9", "La suite de la liste " + "item " * 40, {"source": "d2.md", "title": "Doc 2"}
    )
    chosen = Answer("…", [_hit(results[2]), Hit(section_only.text, "d2.md", "Doc 2", "autre",
                                                 None, 0.5, "s9")], True)  # fmt: skip
    retrieval = Retrieval("q", [0.0], results)
    picked = chosen_passages(chosen, retrieval, most=3, budget=10_000)
    assert [p.chunk.id for p in picked] == ["c2", "s9", "c0"]  # chosen, its section, then the best
    assert picked[0] is results[2] and picked[1].chunk.metadata["title"] == "Doc 2"
    small = chosen_passages(chosen, retrieval, most=3, budget=300)
    assert [p.chunk.id for p in small] == ["c2"]  # the rest of the budget is too small
    assert len(chosen_passages(chosen, retrieval, most=3, budget=120)[0].chunk.text) <= 122
    assert chosen_passages(Answer("", [], True), retrieval, most=2, budget=600)[0] is results[0]


def test_a_draft_in_the_wrong_language_falls_back_to_the_extracts(e5: Embeddings) -> None:
    extractive = ExtractiveAnswerer(e5, threshold=-1.0)
    texts = [
        "La coopérative Brindille réunit 40 maraîchers de la Drôme depuis 2014. Elle livre les "
        "cantines de Valence chaque semaine.",
        "Pour rejoindre le réseau, une ferme signe la charte et paie une cotisation de 120 euros.",
    ]
    results = [_scored(i, t) for i, t in enumerate(texts)]
    retrieval = Retrieval(FR, e5.embed_query(FR), results)
    draft = (
        "The Brindille cooperative brings together 40 growers of the Drôme since 2014. "
        "La coopérative Brindille livre les cantines de Valence chaque semaine."
    )
    model = GenericFakeChatModel(messages=iter([AIMessage(draft)]))
    answerer = LLMAnswerer(
        model, extractive, attributor=Attributor(extractive.embed_texts), passage_budget=600
    )
    final = answerer.answer(FR, retrieval)
    assert (
        final.text == "La coopérative Brindille livre les cantines de Valence chaque semaine. [1]"
    )
    assert (final.drafted, final.dropped) == (2, 1)
    english = GenericFakeChatModel(messages=iter([AIMessage(draft.split(". ")[0] + ".")]))
    answerer.chat = english
    fallback = answerer.answer(FR, retrieval)
    assert fallback.text.startswith(NOTICE_UNCITED) and fallback.kind == "extractive"
    assert (fallback.drafted, fallback.dropped) == (1, 1)
