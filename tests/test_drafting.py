"""What a small model is given (the passages the extractive answer chose, within a budget) and
what of its draft survives the screening before attribution (wrong language, placeholders,
questions), on passages and drafts written for the test, unlike the shipped corpus."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.embeddings import Embeddings
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage

from assistant.answering.attribution import Attributor
from assistant.answering.citations import split_answer
from assistant.answering.drafting import (
    answer_language,
    chosen_passages,
    complete_with_extracts,
    language_of,
    screen,
    screen_reason,
)
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.llm import MIN_PROMPT_BUDGET, NOTICE_UNCITED, LLMAnswerer
from assistant.indexing.store import StoredChunk
from assistant.retrieval.results import Retrieval, Scored
from assistant.types import Answer, Hit

FR = "Comment fonctionne la coopérative Brindille ?"
EN = "How does the Brindille cooperative work?"


FRENCH, ENGLISH, BOTH = frozenset({"fr"}), frozenset({"en"}), frozenset({"fr", "en"})


@pytest.mark.parametrize(
    ("sentence", "languages", "reason"),
    [
        ("La coopérative réunit 40 maraîchers de la Drôme.", FRENCH, ""),
        ("The cooperative brings together 40 growers in the Drôme.", FRENCH, "language: en"),
        ("The cooperative brings together 40 growers in the Drôme.", ENGLISH, ""),
        ("La coopérative réunit 40 maraîchers de la Drôme.", ENGLISH, "language: fr"),
        ("La coopérative réunit 40 maraîchers de la Drôme.", BOTH, ""),  # a quote, mixed sources
        ("l'innovation ;", FRENCH, ""),  # a one-word list item
        ("该合作社每周为学校食堂供货。", FRENCH, "language: other"),
        ("Brindille: 40 maraîchers.", ENGLISH, ""),  # too few function words to judge: kept
        ("Réponse : [n]", FRENCH, "placeholder"),
        ('<passage n="1" titre="Doc">', FRENCH, "placeholder"),
        ("La coopérative a été créée en [ANNÉE] par [Votre nom].", FRENCH, "placeholder"),
        ("Lorem ipsum dolor sit amet.", FRENCH, "placeholder"),
        ("Je suis un assistant et je ne peux pas répondre.", FRENCH, "placeholder"),
        ("```", FRENCH, "placeholder"),
        ("Réponds à la question à partir des passages, en français.", FRENCH, "placeholder"),
        ("Answer the question from the passages, in English.", ENGLISH, "placeholder"),
        ("2.", FRENCH, "placeholder"),
        ("Comment fonctionne la coopérative Brindille ?", FRENCH, "question"),
    ],
)
def test_screen_reason(sentence: str, languages: frozenset[str], reason: str) -> None:
    assert screen_reason(sentence, languages) == reason


def test_screen_keeps_lines_and_removes_references_to_passage_numbers() -> None:
    raw = (
        "Selon le passage 2, une ferme signe la charte.\n"
        "1. Elle paie une cotisation (passage 1).\n"
        "2. It is followed by a training day for the farm.\n"
        "Passage 3 :"
    )
    kept, dropped = screen(split_answer(raw), FRENCH)
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
    # the English sentence goes; the extract it rewrote comes back after the French one
    assert final.text == (
        "La coopérative Brindille livre les cantines de Valence chaque semaine. [1]\n"
        "La coopérative Brindille réunit 40 maraîchers de la Drôme depuis 2014. [1]"
    )
    assert (final.drafted, final.dropped, final.completed) == (2, 1, 1)
    english = GenericFakeChatModel(messages=iter([AIMessage(draft.split(". ")[0] + ".")]))
    answerer.chat = english
    fallback = answerer.answer(FR, retrieval)
    assert fallback.text.startswith(NOTICE_UNCITED) and fallback.kind == "extractive"
    assert (fallback.drafted, fallback.dropped) == (1, 1)


class _Prompts(BaseCallbackHandler):
    """Keeps the last message each chat model call received (the request with the passages)."""

    def __init__(self) -> None:
        self.last: list[str] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kw: Any
    ) -> None:
        self.last.append(str(messages[0][-1].content))


FRENCH_PASSAGES = [
    "La coopérative Brindille réunit 40 maraîchers de la Drôme depuis 2014. Elle livre les "
    "cantines de Valence chaque semaine.",
    "Pour rejoindre le réseau, une ferme signe la charte et paie une cotisation de 120 euros.",
]
ENGLISH_PASSAGES = [
    "The Harbour Lane tool library lends drills, ladders and sewing machines to its 300 "
    "members. Members pay 15 pounds a year and borrow up to three tools at a time.",
    "Volunteers repair the returned tools every Saturday morning in the basement of the "
    "community centre.",
]


def _draft_over(
    e5: Embeddings, texts: list[str], question: str, draft: str
) -> tuple[Answer, list[str]]:
    extractive = ExtractiveAnswerer(e5, threshold=-1.0)
    retrieval = Retrieval(question, e5.embed_query(question), [_scored(i, t) for i, t in
                                                              enumerate(texts)])  # fmt: skip
    prompts = _Prompts()
    model = GenericFakeChatModel(messages=iter([AIMessage(draft)]), callbacks=[prompts])
    answerer = LLMAnswerer(
        model, extractive, attributor=Attributor(extractive.embed_texts), passage_budget=600
    )
    return answerer.answer(question, retrieval), prompts.last


def test_an_english_question_over_french_passages_is_answered_in_french(e5: Embeddings) -> None:
    draft = (
        "La coopérative Brindille réunit 40 maraîchers de la Drôme depuis 2014. "
        "The cooperative delivers to the school canteens of Valence every week."
    )
    final, prompts = _draft_over(e5, FRENCH_PASSAGES, EN, draft)
    assert prompts[0].endswith("Réponds à la question à partir des passages, en français.")
    assert final.kind == "llm" and (final.drafted, final.dropped) == (2, 1)
    assert final.text == (
        "The sources are in French; this answer, written from them, is in French:\n"
        "La coopérative Brindille réunit 40 maraîchers de la Drôme depuis 2014. [1]\n"
        "Elle livre les cantines de Valence chaque semaine. [1]"  # an extract it lacked
    )


def test_a_question_over_an_english_document_is_answered_in_english(e5: Embeddings) -> None:
    question = "How does the Harbour Lane tool library work?"
    draft = (
        "The Harbour Lane tool library lends drills, ladders and sewing machines to its 300 "
        "members.\nVolunteers repair the returned tools every Saturday morning."
    )
    final, prompts = _draft_over(e5, ENGLISH_PASSAGES, question, draft)
    assert prompts[0].endswith("Answer the question from the passages, in English.")
    assert final.text == (
        "The Harbour Lane tool library lends drills, ladders and sewing machines to its 300 "
        "members. [1]\nVolunteers repair the returned tools every Saturday morning. [2]\n"
        "Members pay 15 pounds a year and borrow up to three tools at a time. [1]"
    )
    assert final.dropped == 0 and final.completed == 1
    # asked in French over the same document: the answer is English, said so in French
    french = "Comment fonctionne la bibliothèque d'outils de Harbour Lane ?"
    final, prompts = _draft_over(e5, ENGLISH_PASSAGES, french, draft)
    assert prompts[0].endswith("in English.")
    assert final.text.startswith("Les sources sont en anglais ; cette réponse")
    assert "every Saturday morning. [2]\n" in final.text
    assert answer_language(french, [_scored(0, FRENCH_PASSAGES[0])]) == "fr"


def _answer(text: str, *chunks: str) -> Answer:
    hits = [Hit(f"texte {c}", f"{c}.md", f"Doc {c}", "autre", None, 0.5, c) for c in chunks]
    return Answer(text, hits, True, kind="local-llm")


STEPS = _answer(
    "D'après « Guide du jardin partagé » :\n"
    "1. Réunir les voisins autour d'un plan du terrain. [1]\n"
    "2. Signer une convention d'occupation avec la mairie. [1]\n"
    "3. Ouvrir une caisse commune pour les semences. [2]",
    "g1",
    "g2",
)


def test_a_list_the_model_shortened_gives_way_to_the_extracts_whole_list() -> None:
    model = _answer(
        "Pour lancer un jardin partagé, il faut d'abord mobiliser le quartier : [1]\n"
        "1. Réunir les voisins autour d'un plan du terrain. [1]\n"
        "2. Ouvrir une caisse commune. [2]",  # « pour les semences » lost, item 2 gone
        "g1",
        "g2",
    )
    final = complete_with_extracts(model, STEPS)
    assert final.text == (
        "Pour lancer un jardin partagé, il faut d'abord mobiliser le quartier : [1]\n"
        "1. Réunir les voisins autour d'un plan du terrain. [1]\n"
        "2. Signer une convention d'occupation avec la mairie. [1]\n"
        "3. Ouvrir une caisse commune pour les semences. [2]"
    )
    assert [h.chunk_id for h in final.citations] == ["g1", "g2"] and final.completed == 3


LEAD_STEPS = _answer(
    "La méthode vaut pour toute association de quartier. [1]\n"
    "Trois gestes suffisent pour ouvrir la grainothèque : [1]\n"
    "1. Installer une boîte dans le hall de la médiathèque. [1]\n"
    "2. Étiqueter chaque sachet avec l'espèce et l'année. [1]\n"
    "3. Tenir un cahier des dons et des retraits. [2]",
    "m1",
    "m2",
)


def test_the_extracts_list_takes_the_place_of_the_models_under_one_lead_in() -> None:
    model = _answer(
        "Pour ouvrir la grainothèque, voici ce qu'il faut faire : [1]\n"
        "1. Installer une boîte à la médiathèque. [1]\n"
        "2. Tenir un cahier. [2]\n"
        "Les habitants peuvent ensuite échanger leurs graines. [1]",
        "m1",
        "m2",
    )
    final = complete_with_extracts(model, LEAD_STEPS)
    assert final.text == (
        "Pour ouvrir la grainothèque, voici ce qu'il faut faire : [1]\n"
        "1. Installer une boîte dans le hall de la médiathèque. [1]\n"
        "2. Étiqueter chaque sachet avec l'espèce et l'année. [1]\n"
        "3. Tenir un cahier des dons et des retraits. [2]\n"
        "Les habitants peuvent ensuite échanger leurs graines. [1]\n"
        "La méthode vaut pour toute association de quartier. [1]"
    )  # the list where the model's was, one lead-in, the lost intro after the text
    prose = _answer("Il faut une boîte, des sachets étiquetés et un cahier. [1]", "m1")
    lines = complete_with_extracts(prose, LEAD_STEPS).text.splitlines()
    assert lines[1] == "Trois gestes suffisent pour ouvrir la grainothèque : [1]"
    assert lines[2].startswith("1. Installer une boîte dans le hall") and len(lines) == 6


def test_a_lead_in_is_never_added_without_its_list() -> None:
    model = _answer(
        "Pour ouvrir la grainothèque : [1]\n"
        "1. Installer une boîte dans le hall de la médiathèque. [1]\n"
        "2. Étiqueter chaque sachet avec l'espèce et l'année. [1]\n"
        "3. Tenir un cahier des dons et des retraits. [2]\n"
        "La méthode vaut pour toute association de quartier. [1]",
        "m1",
        "m2",
    )
    final = complete_with_extracts(model, LEAD_STEPS)
    assert "Trois gestes suffisent" not in final.text and final.completed == 0


def test_an_extract_the_model_lost_is_added_cited_and_a_kept_one_is_not() -> None:
    extracts = _answer(
        "Le jardin compte 24 parcelles. [1] Les outils sont prêtés le samedi matin. [2]",
        "a",
        "b",
    )
    paraphrase = _answer("Les outils du jardin sont prêtés chaque samedi matin. [1]", "b")
    final = complete_with_extracts(paraphrase, extracts)
    assert final.text == (
        "Les outils du jardin sont prêtés chaque samedi matin. [1]\n"
        "Le jardin compte 24 parcelles. [2]"
    )
    assert [h.chunk_id for h in final.citations] == ["b", "a"] and final.completed == 1
    # 24 written as 42: the number is missing, so the extract comes back
    wrong = _answer("Le jardin compte 42 parcelles et prête ses outils le samedi matin. [1]", "a")
    assert "Le jardin compte 24 parcelles. [" in complete_with_extracts(wrong, extracts).text
    whole = _answer(
        "Le jardin compte 24 parcelles. [1]\nLes outils sont prêtés le samedi matin. [2]", "a", "b"
    )
    assert complete_with_extracts(whole, extracts) is whole


def test_a_quoted_passage_too_long_for_the_budget_is_sent_as_its_quoted_block() -> None:
    long_text = (
        "Le guide du jardin partagé explique d'abord l'histoire du quartier et de ses friches, "
        * 6
        + "\n1. Réunir les voisins autour d'un plan du terrain.\n2. Signer une convention "
        "d'occupation avec la mairie.\n3. Ouvrir une caisse commune pour les semences."
    )
    results = [_scored(0, long_text), _scored(1, "Un autre passage " + "mot " * 80)]
    extracts = Answer(
        "D'après « Doc 0 » :\n1. Réunir les voisins autour d'un plan du terrain. [1]\n"
        "2. Signer une convention d'occupation avec la mairie. [1]",
        [results[0].to_hit()],
        True,
    )
    retrieval = Retrieval("q", [0.0], results)
    short = chosen_passages(extracts, retrieval, most=3, budget=400)
    assert short[0].chunk.text == (
        "1. Réunir les voisins autour d'un plan du terrain.\n"
        "2. Signer une convention d'occupation avec la mairie."
    )
    roomy = chosen_passages(extracts, retrieval, most=3, budget=5000)
    assert roomy[0].chunk.text == long_text.strip()  # it fits: sent whole


def test_the_passage_budget_follows_the_measured_prompt_rate(hash_embeddings: Embeddings) -> None:
    extractive = ExtractiveAnswerer(hash_embeddings, threshold=-1.0)
    answerer = LLMAnswerer(
        GenericFakeChatModel(messages=iter([AIMessage("Une phrase.")])),
        extractive,
        passage_budget=1200,
        first_token_target=10.0,
    )
    assert answerer.prompt_budget(FR, []) == 1200  # nothing measured yet
    answerer.prompt_chars_per_s = 200.0  # 2000 characters in 10 s: the whole budget fits
    assert answerer.prompt_budget(FR, []) == 1200
    answerer.prompt_chars_per_s = 80.0  # 800 in 10 s, less the question and the template
    fits = answerer.prompt_budget(FR, [])
    assert fits is not None and MIN_PROMPT_BUDGET < fits < 800
    history = [{"role": "user", "content": "Et avant ? " * 20}]
    longer = answerer.prompt_budget(FR, history)
    assert longer is not None and longer < fits  # the history takes its share
    answerer.prompt_chars_per_s = 10.0
    assert answerer.prompt_budget(FR, []) == MIN_PROMPT_BUDGET  # never below the extracts
    retrieval = Retrieval(FR, hash_embeddings.embed_query(FR), [_scored(0, FRENCH_PASSAGES[0])])
    answerer.prompt_chars_per_s = None
    answerer.answer(FR, retrieval)  # the fake model answers at once: a high rate is learnt
    assert answerer.prompt_chars_per_s is not None and answerer.prompt_chars_per_s > 200
