"""Follow-up completion: elliptical questions borrow the topic of the last real user question."""

from __future__ import annotations

import pytest

from assistant.retrieval.followup import contextualize, is_elliptical

TOPIC = "Quelles sont les étapes pour monter un partenariat ?"
HISTORY = [
    {"role": "user", "content": TOPIC},
    {"role": "assistant", "content": "Il y a cinq étapes : diagnostic, rencontre, convention..."},
]


@pytest.mark.parametrize(
    "question",
    [
        "et pour une collectivité ?",
        "Et les fondations ?",
        "Et si la collectivité refuse ?",
        "qui l'a signée ?",
        "Qui les a créés ?",
        "combien ?",
        "Pourquoi ?",
        "c'est quand ?",
        "Qu'est-ce que c'est ?",
        "Elle a été créée quand ?",
        "Il a été créé quand ?",
        "Comment y adhérer ?",
        "Quel est son budget ?",
        "Ça coûte combien ?",
        "les entreprises aussi ?",
        "Des exemples ?",
        "Plus de détails ?",
        "Mais pour une petite association ?",
        "and for companies?",
        "What about foundations?",
        "Who signed it?",
        "Tell me more",
    ],
)
def test_elliptical(question: str) -> None:
    assert is_elliptical(question)


@pytest.mark.parametrize(
    "question",
    [
        TOPIC,
        "Qu'est-ce que le RAMEAU ?",
        "Qu'est-ce que l'ODD 17 ?",
        "Qui a signé la charte ODD 17 ?",
        "Combien coûte l'adhésion au RAMEAU ?",
        "Y a-t-il des aides pour les associations ?",
        "Faut-il signer une convention ?",
        "Existe-t-il un guide du mécénat de compétences ?",
        "Et comment une fondation peut-elle financer une association locale ?",
        "Comment faire alliance avec une entreprise ?",
        "Quel est le rôle des collectivités dans les alliances territoriales ?",
        "How do associations and companies build partnerships?",
        "What is SDG 17?",
        "",
        "   ",
    ],
)
def test_self_contained(question: str) -> None:
    assert not is_elliptical(question)


def test_contextualize_completes_with_last_user_question() -> None:
    assert contextualize("et pour une collectivité ?", HISTORY) == (
        "Quelles sont les étapes pour monter un partenariat ? et pour une collectivité ?"
    )


def test_contextualize_leaves_self_contained_questions() -> None:
    question = "Comment faire alliance avec une entreprise ?"
    assert contextualize(question, HISTORY) == question


def test_contextualize_without_history_or_user_turns() -> None:
    assert contextualize("combien ?", []) == "combien ?"
    only_assistant = [{"role": "assistant", "content": "Bonjour, que cherchez-vous ?"}]
    assert contextualize("combien ?", only_assistant) == "combien ?"


def test_contextualize_skips_elliptical_turns_to_reach_topic() -> None:
    history = [
        *HISTORY,
        {"role": "user", "content": "et pour une collectivité ?"},
        {"role": "assistant", "content": "..."},
    ]
    assert contextualize("et pour une fondation ?", history) == f"{TOPIC} et pour une fondation ?"


def test_contextualize_uses_latest_topic() -> None:
    history = [
        *HISTORY,
        {"role": "user", "content": "Qu'est-ce que l'ODD 17 ?"},
        {"role": "assistant", "content": "..."},
    ]
    assert contextualize("qui l'a signé ?", history) == "Qu'est-ce que l'ODD 17 ? qui l'a signé ?"


def test_contextualize_tolerates_history_ending_with_the_question() -> None:
    history = [*HISTORY, {"role": "user", "content": "combien ?"}]
    assert contextualize("combien ?", history) == f"{TOPIC} combien ?"


def test_contextualize_falls_back_to_latest_when_all_elliptical() -> None:
    history = [{"role": "user", "content": "et alors ?"}, {"role": "assistant", "content": "?"}]
    assert contextualize("pourquoi ?", history) == "et alors ? pourquoi ?"


def test_contextualize_english() -> None:
    history = [
        {"role": "user", "content": "How can an association partner with a local authority?"},
        {"role": "assistant", "content": "..."},
    ]
    assert contextualize("and for companies?", history) == (
        "How can an association partner with a local authority? and for companies?"
    )
    assert contextualize("What is SDG 17?", history) == "What is SDG 17?"
