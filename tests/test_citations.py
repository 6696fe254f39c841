"""The [n] contract (``assistant.answering.citations``): markers written, read, checked,
renumbered and removed in one module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.answering.citations import (
    Renumbering,
    check_citations,
    cite,
    compose,
    drop_markers,
    format_citation,
    marker,
    markers,
    quoted_units,
    split_answer,
    stream_steps,
    strip_citations,
)
from assistant.types import Hit

ROOT = Path(__file__).resolve().parents[1]


def test_markers_are_written_and_read_back_by_the_same_module() -> None:
    # an English answer with bullets, not the extractive answerer's French prose
    units = [("Funding covers coordination time.", 2), ("• Apply before May.", 1), ("Done.", 2)]
    text = compose(units)
    assert text == "Funding covers coordination time. [2]\n• Apply before May. [1] Done. [2]"
    assert [(n, text[s:e]) for s, e, n in markers(text)] == [(2, "[2]"), (1, "[1]"), (2, "[2]")]
    assert quoted_units(text) == [(t, n) for t, n in units]
    assert stream_steps(text)[-1].replace("\n", " ") == text.replace("\n", " ")
    assert cite("Une phrase.  ", 3) == "Une phrase. [3]" and marker(12) == "[12]"


def test_split_answer_keeps_list_items_and_joins_stray_markers() -> None:
    raw = "Steps:\n- Meet the partners. Sign the charter.\n[2]\n2) Evaluate [1]"
    assert split_answer(raw) == [
        ["Steps:"],
        ["- Meet the partners.", "Sign the charter. [2]"],
        [],
        ["2) Evaluate [1]"],
    ]


def test_a_models_markers_are_removed_other_brackets_kept() -> None:
    raw = "Créé en 2006 [source 2]. Voir [...] et [sic] [1, 3]."
    assert strip_citations(raw) == "Créé en 2006. Voir [...] et [sic]."
    assert drop_markers("Il repose sur quatre valeurs [doc 1] [sic] [2-3] .") == (
        "Il repose sur quatre valeurs [sic]."
    )


def test_english_marker_words_and_ranges_are_checked() -> None:
    checked = check_citations("Founded in 2006 [documents 2 and 3]. Unsourced claim [12].", 3)
    assert checked.text == "Founded in 2006 [1][2]."
    assert checked.sources == [2, 3] and checked.dropped == ["Unsourced claim [12]."]


def test_renumbering_follows_first_use() -> None:
    r = Renumbering()
    assert [r.of(3), r.of(1), r.of(3)] == [1, 2, 1]
    assert r.sources == [3, 1]


def test_only_the_citations_module_holds_a_marker_pattern() -> None:
    """``[n]`` is parsed in one place: no other module of the library or the edges compiles a
    pattern for a bracketed number."""
    pattern = re.compile(r"\\\[\(?\\d|\\\[\[\^\\\[\\\]")  # "\[(\d", "\[\d", "\[[^\[\]"
    found = [
        str(p.relative_to(ROOT))
        for folder in ("assistant", "ui")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert found == ["assistant/answering/citations.py"]


@pytest.mark.parametrize(
    ("raw", "text", "sources"),
    [
        ("Créé en 2006 [2]. Lancé en 2011 [1].", "Créé en 2006 [1]. Lancé en 2011 [2].", [2, 1]),
        ("Créé en 2006. [2] PWNED.", "Créé en 2006. [1]", [2]),
        ("Faux [9]. Vrai [passage 3].", "Vrai [1].", [3]),
        ("Deux sources [3, 1] et [2-3].", "Deux sources [1][2] et [1][3].", [3, 1, 2]),
        (
            "Voici les étapes :\n1. Diagnostic [1]\n2. Rien",
            "Voici les étapes :\n1. Diagnostic [1]",
            [1],
        ),
        ("Une phrase sans marque.\n[2]", "Une phrase sans marque. [1]", [2]),
        ("Voir p. 4 du guide [1] [sic].", "Voir p. 4 du guide [1] [sic].", [1]),
        ("PWNED", "", []),
        ("Cité [0] puis [4].", "", []),
    ],
)
def test_check_citations(raw: str, text: str, sources: list[int]) -> None:
    checked = check_citations(raw, 3)
    assert checked.text == text
    assert checked.sources == sources


def test_check_citations_reports_dropped_sentences() -> None:
    checked = check_citations("Lancé en 2011 [1]. Inventé sans source. Et [7] hors liste.", 3)
    assert checked.dropped == ["Inventé sans source.", "Et [7] hors liste."]


def test_stream_steps_grow_one_cited_sentence_at_a_time() -> None:
    text = "Première phrase. [1] Deuxième phrase. [2]\n- Étape un [1]"
    assert stream_steps(text) == [
        "Première phrase. [1]",
        "Première phrase. [1] Deuxième phrase. [2]",
        "Première phrase. [1] Deuxième phrase. [2] - Étape un [1]",
    ]
    assert stream_steps("Je n'ai pas trouvé.") == ["Je n'ai pas trouvé."]


def test_quoted_units_pair_text_and_marker() -> None:
    assert quoted_units("A est vrai. [1] B aussi. [2] C encore. [1]") == [
        ("A est vrai.", 1),
        ("B aussi.", 2),
        ("C encore.", 1),
    ]


def test_compose_puts_markers_after_each_unit_and_items_on_their_own_lines() -> None:
    text = compose([("Une phrase.", 1), ("1. Une étape.", 1), ("2. Une autre.", 2)])
    assert text == "Une phrase. [1]\n1. Une étape. [1]\n2. Une autre. [2]"


def test_format_citation() -> None:
    hit = Hit("t", "boite-a-outils/guide.pdf", "Guide", "boite-a-outils", 4, 0.1, "c1")
    assert format_citation(2, hit) == "[2] Guide, p. 4 (boite-a-outils) — boite-a-outils/guide.pdf"
