"""Pure text cleaning: ligatures, invisible characters, hyphenation, headers/footers, noise."""

from __future__ import annotations

import pytest

from assistant.text.cleaning import (
    clean_pdf_pages,
    clean_text,
    is_page_number_line,
    is_wordlike,
    join_hyphenated,
    normalize_unicode,
    normalize_whitespace,
    remove_headers_footers,
    running_lines,
    strip_markdown,
    word_share,
)


def test_ligatures_are_split_and_invisible_characters_dropped() -> None:
    text = "Le ﬁnancement, l'eﬀort, ﬂuide, eﬃcace\u200b, par\u00adtenaire\x07\ufeff"
    assert normalize_unicode(text) == "Le financement, l'effort, fluide, efficace, partenaire"


def test_soft_hyphen_at_line_end_joins_the_word() -> None:
    assert normalize_unicode("parte\u00ad\nnariat durable") == "partenariat durable"


def test_whitespace_is_unified_but_paragraphs_and_lists_kept() -> None:
    text = "Titre  \r\n\r\n\r\n\tUn\u00a0paragraphe   sur\u202fdeux.\n- un\n- deux\n\n\n\nFin"
    assert normalize_whitespace(text) == "Titre\n\nUn paragraphe sur deux.\n- un\n- deux\n\nFin"


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("le parte-\nnariat", "le partenariat"),
        ("une asso-\nciation", "une association"),
        ("la co-\nconstruction", "la co-construction"),
        ("l'anti-\ngaspillage", "l'anti-gaspillage"),
        ("la sous-\ntraitance", "la sous-traitance"),
        ("le non-\nrespect", "le non-respect"),
        ("un ex-\nsalarié", "un ex-salarié"),
        ("le vice-\nprésident", "le vice-président"),
        ("à Saint-\nÉtienne", "à Saint-Étienne"),
        ("elle-\nmême", "elle-même"),
        ("c'est-à-\ndire", "c'est-à-dire"),
        ("celles-\nci", "celles-ci"),
        ("l'after-\nwork", "l'after-work"),
        ("tiret -\nseul", "tiret -\nseul"),  # not a word break
        ("2020-\n2024", "2020-\n2024"),  # numbers are left alone
        ("fin.\n\n- liste", "fin.\n\n- liste"),
    ],
)
def test_join_hyphenated(broken: str, expected: str) -> None:
    assert join_hyphenated(broken) == expected


def test_join_hyphenated_trusts_the_document_vocabulary() -> None:
    # "mi-" is a compound prefix, but the document spells "milieu" elsewhere.
    text = "le mi-\nlieu associatif et le milieu économique"
    assert join_hyphenated(text) == "le milieu associatif et le milieu économique"
    # an unknown prefix, but the hyphenated form appears elsewhere
    text = "la méta-\nanalyse confirme la méta-analyse"
    assert join_hyphenated(text) == "la méta-analyse confirme la méta-analyse"


@pytest.mark.parametrize(
    "line", ["12", " 7 ", "page 3 / 8", "Page 3", "p. 12", "- 4 -", "— 12 —", "3 sur 8", "xiv"]
)
def test_page_number_lines(line: str) -> None:
    assert is_page_number_line(line)


@pytest.mark.parametrize("line", ["", "2024 en chiffres", "civil", "Page de garde", "ODD 17"])
def test_not_page_number_lines(line: str) -> None:
    assert not is_page_number_line(line)


_TOPICS = ("mécénat", "coopération", "innovation", "évaluation", "gouvernance")


def _pages(n: int) -> list[str]:
    return [
        f"Guide des alliances — édition 2024\nLe {topic}\n\nCe chapitre traite du {topic}."
        f"\nIl donne des exemples de {topic}.\n\nLe RAMEAU | page {i} / {n}"
        for i, topic in enumerate(_TOPICS[:n], start=1)
    ]


def test_running_headers_and_footers_are_found_with_digits_masked() -> None:
    keys = running_lines(_pages(4))
    assert "guide des alliances — édition #" in keys
    assert "le rameau | page # / #" in keys
    assert not any("chapitre" in k for k in keys)


def test_remove_headers_footers_keeps_the_body() -> None:
    cleaned = remove_headers_footers(_pages(4))
    assert cleaned[1] == (
        "Le coopération\n\nCe chapitre traite du coopération.\n"
        "Il donne des exemples de coopération."
    )


def test_running_lines_need_three_pages_but_page_numbers_always_go() -> None:
    pages = ["Titre\nTexte un.\n1", "Titre\nTexte deux.\n- 2 -"]
    assert running_lines(pages) == set()
    assert remove_headers_footers(pages) == ["Titre\nTexte un.", "Titre\nTexte deux."]


def test_a_line_repeated_in_the_middle_of_pages_is_kept() -> None:
    pages = [f"H{i}\na\nb\nc\nÀ retenir\nd\ne\nf\nF{i}" for i in range(4)]
    assert all("À retenir" in page for page in remove_headers_footers(pages))


def test_clean_pdf_pages_chains_everything() -> None:
    pages = [
        "En-tête\nLe parte-\nnariat ﬁnancier.\n1",
        "En-tête\nUn second parte-\nnariat.\n2",
        "En-tête\nFin.\n3",
    ]
    assert clean_pdf_pages(pages) == [
        "Le partenariat financier.",
        "Un second partenariat.",
        "Fin.",
    ]


def test_word_share_tells_prose_from_noise() -> None:
    prose = "Les alliances entre associations et entreprises renforcent les territoires (ODD 17)."
    noise = "xkcdf qwrtz bvnmlk ptrsdf ghjkl zxcvb"
    assert word_share(prose)[0] == 1.0
    assert word_share(noise)[0] == 0.0
    assert word_share("12 34 %")[1] == 0
    assert is_wordlike("l'économie")
    assert is_wordlike("co-construction,")
    assert not is_wordlike("ĂĞƐƚ")


def test_strip_markdown_keeps_lines_and_drops_marks() -> None:
    md = (
        "# Titre\n\nDu **gras**, de l'*italique*, un [lien](https://x.org), ![logo](l.png)."
        "\n\n* un\n+ deux\n\n| a | b |\n|---|:---:|\n| 1 | 2 |\n\n---\n<!-- note -->snake_case_name"
    )
    assert clean_text(strip_markdown(md)) == (
        "Titre\n\nDu gras, de l'italique, un lien, logo.\n\n- un\n- deux\n\n"
        "| a | b |\n| 1 | 2 |\n\nsnake_case_name"
    )


NOTE = "\n1 Les intitulés sont abrégés."


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        # the call number glued to a word, its note at the foot of the page: removed
        (
            "Le cadre des titres1. Puis la suite." + NOTE,
            "Le cadre des titres. Puis la suite." + NOTE,
        ),
        (
            "Trois conditions en alliance1, dit-on." + NOTE,
            "Trois conditions en alliance, dit-on." + NOTE,
        ),
        # no note on the page, an acronym, a year, or the note before the call: kept
        ("Le mot titres1. sans note.", "Le mot titres1. sans note."),
        (
            "ODD17 et Agenda2030 restent.\n17 Une note.",
            "ODD17 et Agenda2030 restent.\n17 Une note.",
        ),
        (NOTE.strip() + "\nLe mot titres1 après.", NOTE.strip() + "\nLe mot titres1 après."),
    ],
)
def test_footnote_call_numbers_are_removed_only_when_their_note_follows(
    page: str, expected: str
) -> None:
    from assistant.text.cleaning import strip_footnote_markers

    assert strip_footnote_markers(page) == expected


def test_dropped_ligatures_are_rejoined_when_that_makes_a_known_word() -> None:
    from assistant.text.ligatures import repair_ligatures

    broken = "Les collec vités et la Transi on écologique ; la Direcon et l'organisaon."
    assert repair_ligatures(broken) == (
        "Les collectivités et la Transition écologique ; la Direction et l'organisation."
    )
    # real words next to each other are left alone, and so are names and acronyms
    fine = "Le mécénat en nature et de compétences, pour un fort ancrage du RAMEAU à Lille."
    assert repair_ligatures(fine) == fine
    # the document's own words count: « coopéra ves » -> « coopératives » (no list needed)
    assert repair_ligatures("des coopéra ves", known={"coopératives"}) == "des coopératives"


def test_pdf_pages_get_their_ligatures_repaired() -> None:
    pages = ["Les collec vités locales et la transi on.", "Une autre page sur les collectivités."]
    assert clean_pdf_pages(pages)[0] == "Les collectivités locales et la transition."
