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
    # no question word of its own: the topic's ask, with the new precision
    assert contextualize("et pour une collectivité ?", HISTORY) == (
        "Quelles sont les étapes pour monter un partenariat, pour une collectivité ?"
    )


def test_a_follow_up_with_its_own_ask_keeps_it_and_carries_the_subject_over() -> None:
    history = [
        {"role": "user", "content": "Qu'est-ce que l'ODD 17 ?"},
        {"role": "assistant", "content": "L'ODD 17 est le dix-septième objectif. [1]"},
    ]
    assert contextualize("et concrètement, qui peut y participer ?", history) == (
        "qui peut participer (l'ODD 17) ?"
    )
    history = [
        {"role": "user", "content": "Comment fonctionne le Fonds de dotation Horizon ?"},
        {"role": "assistant", "content": "..."},
    ]
    assert contextualize("mais combien ça coûte ?", history) == (
        "combien ça coûte (fonctionne le Fonds de dotation Horizon) ?"
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
    assert contextualize("et pour une fondation ?", history) == (
        f"{TOPIC.rstrip(' ?')}, pour une fondation ?"
    )


def test_contextualize_uses_latest_topic() -> None:
    history = [
        *HISTORY,
        {"role": "user", "content": "Qu'est-ce que l'ODD 17 ?"},
        {"role": "assistant", "content": "..."},
    ]
    assert contextualize("qui l'a signé ?", history) == "qui l'a signé (l'ODD 17) ?"


def test_contextualize_tolerates_history_ending_with_the_question() -> None:
    history = [*HISTORY, {"role": "user", "content": "combien ?"}]
    assert (
        contextualize("combien ?", history) == "combien (les étapes pour monter un partenariat) ?"
    )


def test_contextualize_falls_back_to_latest_when_all_elliptical() -> None:
    history = [{"role": "user", "content": "et alors ?"}, {"role": "assistant", "content": "?"}]
    assert contextualize("pourquoi ?", history) == "pourquoi (et alors) ?"


def test_contextualize_english() -> None:
    history = [
        {"role": "user", "content": "How can an association partner with a local authority?"},
        {"role": "assistant", "content": "..."},
    ]
    assert contextualize("and for companies?", history) == (
        "How can an association partner with a local authority, for companies ?"
    )
    assert contextualize("What is SDG 17?", history) == "What is SDG 17?"


LABEL = [
    {"role": "user", "content": "Qu'est-ce que le label Territoire engagé pour la nature ?"},
    {"role": "assistant", "content": "Un label attribué aux communes qui... [1]"},
]


@pytest.mark.parametrize(
    "question",
    [
        "et on l'obtient comment, en pratique, quand on est une petite mairie rurale ?",
        "il coûte combien à renouveler chaque année ce label ?",
        "elle dure combien de temps la procédure d'instruction du dossier ?",
        "Et la dernière, elle sert à quoi exactement pour les communes ?",
        "et les communes lauréates, elles reçoivent quoi comme accompagnement technique ?",
        "on en compte combien de lauréats dans la région Occitanie ?",
    ],
)
def test_a_long_follow_up_that_points_back_is_completed(question: str) -> None:
    assert is_elliptical(question)
    assert "label Territoire engagé pour la nature" in contextualize(question, LABEL)


@pytest.mark.parametrize(
    "question",
    [
        "Les fondations, elles peuvent financer une mairie rurale ?",
        "Il faut une convention écrite pour un don de matériel ?",
        "Comment une mutuelle peut-elle soutenir un club sportif local ?",
        "Y a-t-il un label pour les communes qui protègent la biodiversité ?",
        "Quelle est la première étape d'une candidature au label ?",
    ],
)
def test_a_long_question_that_names_its_subject_is_left_alone(question: str) -> None:
    assert not is_elliptical(question)
    assert contextualize(question, LABEL) == question


def test_a_follow_up_with_a_clause_of_its_own_keeps_its_ask() -> None:
    # no question word, but its own verb: the ask is the follow-up's, not the topic's
    assert contextualize("elle a une valeur juridique cette charte ?", LABEL) == (
        "elle a une valeur juridique cette charte (le label Territoire engagé pour la nature) ?"
    )
    history = [{"role": "user", "content": "Sur quoi porte le contrôle de gestion ?"}]
    assert (
        contextualize("et on le fait quand ?", history)
        == "on le fait quand (le contrôle de gestion) ?"
    )
