"""The pure rules that decide when the assistant declines (no model needed)."""

from __future__ import annotations

import pytest

from assistant.answering.abstention import (
    counted_noun,
    counts,
    expected_kind,
    is_english,
    judge,
    missing_entities,
    named_entities,
    question_type,
    satisfies,
    unknown_share,
)


@pytest.mark.parametrize(
    ("question", "english"),
    [
        ("How many projects did the ODD 17 fund support?", True),
        ("What is the best way to train for a marathon?", True),
        ("Quelles sont les étapes pour monter un partenariat ?", False),
        ("c koi un catalyseur territorial", False),
        ("Le fonds ODD 17, c'est quoi ?", False),
    ],
)
def test_is_english(question: str, english: bool) -> None:
    assert is_english(question) is english


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Quel est le numéro de téléphone du RAMEAU ?", "phone"),
        ("Combien coûte le livre en version papier ?", "amount"),
        ("Quel est le budget annuel de la fondation ?", "amount"),
        ("Le fonds était doté de combien d'argent ?", "amount"),
        ("Quel pourcentage des maires ne savent pas piloter ?", "percent"),
        ("Combien d'articles compte la proposition de loi ?", "number"),
        ("How many goals are in the 2030 Agenda?", "number"),
        ("Qu'est-ce qu'un catalyseur territorial ?", None),
    ],
)
def test_expected_kind(question: str, kind: str | None) -> None:
    assert expected_kind(question) == kind


def test_satisfies_each_kind() -> None:
    assert satisfies("phone", "Appelez le 01 23 45 67 89.")
    assert not satisfies("phone", "Le RAMEAU est installé à Vincennes.")
    assert satisfies("amount", "Le fonds était doté de 1,5 M€ sur trois ans.")
    assert not satisfies("amount", "Le fonds a soutenu une trentaine de projets.")
    assert satisfies("percent", "Pour 82 % des maires, c'est une priorité.")
    assert satisfies("number", "Le texte compte six articles.")
    assert not satisfies("number", "1. Faire un diagnostic partagé du territoire")  # list mark
    assert satisfies(None, "anything")


def test_counted_noun_and_counts() -> None:
    assert counted_noun("Combien de salariés compte l'équipe ?") == "salaries"
    assert counted_noun("Elle fait combien d'articles ?") == "articles"
    assert counted_noun("En combien de temps a-t-elle été écrite ?") is None
    assert counted_noun("How many projects were funded?") is None
    assert counts("projets", "Le fonds a soutenu une trentaine de projets en 2021.")
    assert counts("articles", "La proposition compte 6 articles répartis en trois titres.")
    assert not counts("salaries", "Le RAMEAU a été créé en 2006 par des entrepreneurs.")
    # a table row read as an item: a year in one cell does not count the noun of the next
    row = "- Livre — Parution : octobre 2021 ; Public : toute personne curieuse"
    assert not counts("personnes", row)
    assert counts("personnes", "- Soirée — Présents : 300 personnes ; Lieu : Paris")
    # a compound written with or without its hyphen is the same noun
    assert counts("cofondateurs", "La fondation a été créée par 21 co-fondateurs.")
    assert counts("co-fondateurs", "La fondation a été créée par 21 cofondateurs.")


def test_unknown_share_ignores_english_and_counts_french() -> None:
    vocabulary = {"recet": 0, "tart": 0, "tatin": 0, "allianc": 12, "territoir": 30}

    def df(term: str) -> int:
        return vocabulary.get(term, 1)

    share, unknown = unknown_share("Quelle est la recette de la tarte tatin ?", df)
    assert set(unknown) >= {"tart", "tatin"} and share >= 0.5
    share, unknown = unknown_share("Les alliances du territoire", df)
    assert (share, unknown) == (0.0, [])
    assert unknown_share("Who won the tarte tatin cup?", df) == (0.0, [])


def test_unknown_share_weighs_the_french_words_of_an_english_question() -> None:
    """An English question is judged by the words French has too, and only when none of them
    occurs in the corpus: the French word list also holds English words."""
    vocabulary = {"allianc": 12, "mod": 51, "local": 81}
    french = {"train", "marathon", "alliance", "local", "modes", "four", "business", "ticket"}

    def df(term: str) -> int:
        return vocabulary.get(term, 0)

    def judged(question: str) -> tuple[float, list[str]]:
        return unknown_share(question, df, lambda w: w in french)

    share, unknown = judged("What is the best way to train for a marathon?")
    assert share == 1.0 and len(unknown) == 2
    assert judged("How much is a train ticket to Lyon?")[0] == 1.0
    # one word French has, absent: too little to say the question is off-topic
    assert judged("How does a charity find a business partner?") == (0.0, [])
    # absent words beside one the corpus knows: on topic
    assert judged("What are the four partnership modes?") == (0.0, [])
    assert judged("What are the steps for a town to launch a local alliance?") == (0.0, [])


def test_named_entities_and_missing() -> None:
    assert named_entities("Quel montant le Fonds ODD 17 a-t-il versé au RNMA ?") == [
        "fonds",
        "odd",
        "rnma",
    ]
    assert named_entities("Faut-il prévoir une reconduction tacite ?") == []
    assert named_entities("What share of French people agree?") == []  # English: acronyms only
    assert missing_entities("Combien de buts Mbappé a-t-il marqués ?", ["Le RAMEAU"]) == ["mbappe"]
    assert missing_entities("Que fait le RAMEAU ?", ["Le RAMEAU, laboratoire"]) == []


def test_judge_order_of_reasons() -> None:
    args = {"threshold_fr": 0.83, "threshold_en": 0.80, "unknown_fraction": 0.0}
    ok = judge(
        "Que fait le RAMEAU ?", 0.9, unknown=[], kind=None, kind_found=True, missing=[], **args
    )
    assert ok.answer
    low = judge(
        "Que fait le RAMEAU ?", 0.8, unknown=[], kind=None, kind_found=True, missing=[], **args
    )
    assert not low.answer and "similarité" in low.reason
    english = judge(
        "What does Le RAMEAU do?", 0.81, unknown=[], kind=None, kind_found=True, missing=[], **args
    )
    assert english.answer
    args["unknown_fraction"] = 0.6
    off = judge(
        "recette tarte tatin",
        0.9,
        unknown=["tart", "tatin"],
        kind=None,
        kind_found=True,
        missing=[],
        **args,
    )
    assert not off.answer and "hors du corpus" in off.reason
    args["unknown_fraction"] = 0.0
    no_value = judge(
        "Quel budget ?", 0.9, unknown=[], kind="amount", kind_found=False, missing=[], **args
    )
    assert not no_value.answer and "amount" in no_value.reason


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        ("Quelles sont les conditions pour candidater ?", "list"),
        ("Quels outils existent pour évaluer un partenariat ?", "list"),
        ("Je suis élue, par où commencer ?", "list"),
        ("Comment monter une alliance étape par étape ?", "list"),
        # a how-to whose verb comes a few words after « comment », conjugated
        ("Comment une école peut lancer un jumelage avec une entreprise ?", "list"),
        ("Comment notre club monte un projet avec la mairie ?", "list"),
        ("Comment le bilan montre-t-il l'impact ?", "other"),
        ("Comment s'appelle le réseau ?", "other"),
        # what goes into something: its contents, a list
        ("Que doit contenir le dossier d'inscription au club ?", "list"),
        ("quoi mettre dans la trousse de secours", "list"),
        ("What are the main steps?", "list"),
        ("Qu'est-ce qu'une convention de mécénat ?", "definition"),
        ("c'est quoi le mécénat de compétences", "definition"),
        ("What is a territorial catalyst?", "definition"),
        ("Qui pilote le programme ?", "who"),
        ("Quand le dossier doit-il être déposé ?", "value"),
        ("Combien coûte l'adhésion ?", "value"),
        ("Quel est le rôle du maire ?", "other"),
        ("Pourquoi faire alliance ?", "other"),
    ],
)
def test_question_type_from_cue_words(question: str, asked: str) -> None:
    assert question_type(question) == asked


def test_a_date_question_wants_a_time_and_fin_novembre_is_one() -> None:
    assert expected_kind("Quand la décision est-elle rendue ?") == "date"
    assert expected_kind("Depuis quand le réseau existe-t-il ?") == "date"
    assert satisfies(
        "date", "La décision est transmise à la collectivité fin novembre au plus tard."
    )
    assert satisfies("date", "Le réseau est né en 2014.")
    assert not satisfies("date", "Le réseau rassemble des catalyseurs de profils variés.")


def test_opening_hours_and_a_year_the_evidence_lacks_are_missing_values() -> None:
    assert expected_kind("Quels sont les horaires d'ouverture de la maison des associations ?") == (
        "hours"
    )
    assert satisfies("hours", "Ouvert du lundi au vendredi de 9 h à 17 h 30.")
    assert not satisfies("hours", "La maison des associations accueille les bénévoles.")
    evidence = ["Le fonds a soutenu des projets de 2020 à 2022."]
    assert missing_entities("Quelle est la date limite du fonds pour 2025 ?", evidence) == ["2025"]
    assert missing_entities("Qu'a fait le fonds en 2020 ?", evidence) == []


def test_a_length_of_time_is_asked_and_found() -> None:
    """« sur combien de temps », « how long » ask a duration: a number of years, months, weeks…
    answers it, a date or a count of something else does not; « depuis combien de temps » may
    be answered by a start date and stays a number question."""
    for question in (
        "Le programme a duré combien de temps ?",
        "En combien de temps la convention est-elle signée ?",
        "Pour quelle durée le contrat est-il conclu ?",
        "How long does the pilot last?",
    ):
        assert expected_kind(question) == "duration", question
    assert expected_kind("Depuis combien de temps l'association existe-t-elle ?") == "number"
    assert expected_kind("Combien de projets ont été soutenus ?") == "number"
    for text in (
        "Le pilote s'étend sur dix-huit mois.",
        "La convention vaut pour 3 ans renouvelables.",
        "Il faut compter quelques semaines de préparation.",
        "The pilot runs for two years.",
    ):
        assert satisfies("duration", text), text
    for text in ("Signée le 4 mars 2019.", "Le texte compte 6 articles.", "Créée en 2006."):
        assert not satisfies("duration", text), text
