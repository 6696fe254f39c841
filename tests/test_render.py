"""Pure rendering helpers of the UI: escaping, streaming steps, citations, highlighting."""

from __future__ import annotations

import pytest

from assistant.types import Hit
from ui.render import (
    NBSP,
    NNBSP,
    answer_markdown,
    esc,
    french_spacing,
    highlight_spans,
    md_escape,
    parse_chip,
    passage_html,
    reflow,
    safe_markdown,
)

HIT = Hit(
    text="Intro du guide.\n\nLe Fonds ODD 17 finance le temps\nde coordination. Fin.",
    source="boite-a-outils/guide d'été.pdf",
    title="Guide <b>gras</b>",
    kind="boite-a-outils",
    page=2,
    score=0.1,
    chunk_id="c1",
)


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[clic](javascript:alert(1))",
        "${alert(1)} {{constructor}}",
    ],
)
def test_escapers_leave_no_live_markup(payload: str) -> None:
    html_out = esc(payload)
    assert "<" not in html_out and ">" not in html_out and '"' not in html_out
    assert "$" not in html_out and "{" not in html_out
    md = md_escape(payload)
    assert "<" not in md and "](" not in md and "javascript:" not in md


def test_answer_markdown_lists_numbered_citations_with_kind_and_page() -> None:
    md = answer_markdown("Le Fonds finance. [1]", [HIT], grounded=True)
    assert "**Sources**" in md and "\\[1\\] Guide &lt;b&gt;gras&lt;/b&gt;" in md
    assert f"Boîte à outils, p\\.{NBSP}2" in md
    assert "Documents proches" in answer_markdown("Rien.", [HIT], grounded=False)


def test_highlight_is_whitespace_insensitive_and_merges_overlaps() -> None:
    spans = highlight_spans(HIT.text, ["Le Fonds ODD 17 finance le temps de coordination.", "Fin."])
    assert [HIT.text[s:e] for s, e in spans] == [
        "Le Fonds ODD 17 finance le temps\nde coordination.",
        "Fin.",
    ]
    assert highlight_spans("abc def", ["abc def", "def"]) == [(0, 7)]
    assert highlight_spans("abc", ["absent"]) == []


def test_passage_html_escapes_and_links_to_the_pdf_page() -> None:
    out = passage_html(1, HIT, ["Le Fonds ODD 17 finance le temps de coordination."])
    # reflowed: the PDF's line break inside the sentence is gone, the highlight kept
    assert "<mark>Le Fonds ODD 17 finance le temps de coordination.</mark>" in out
    assert "<b>" not in out and "&lt;b&gt;gras&lt;/b&gt;" in out
    assert 'href="/sources/boite-a-outils/guide%20d%27%C3%A9t%C3%A9.pdf#page=2"' in out
    # the title and page are shown, not the file's path
    assert f"p.{NBSP}2" in out and "guide d&#x27;été.pdf" not in out and "guide d'été" not in out


def test_french_spacing_keeps_signs_off_the_start_of_a_line() -> None:
    text = "Pourquoi? Voici la liste; puis: la suite (p. 4); Les « mots »! Et ça ?"
    out = french_spacing(text)
    assert out == (
        f"Pourquoi{NNBSP}? Voici la liste{NNBSP}; puis{NBSP}: la suite (p. 4){NNBSP}; "
        f"Les «{NNBSP}mots{NNBSP}»{NNBSP}! Et ça{NNBSP}?"
    )
    # no breakable space is left before a sign, so a wrapped line never starts with one
    assert not any(out[i] == " " and out[i + 1] in "?!;:»" for i in range(len(out) - 1))
    # what is not prose is left alone: URLs, times, ratios, already spaced text
    for kept in ("https://exemple.org/a?b=1", "à 10:30", "1:2", f"déjà{NNBSP}?"):
        assert french_spacing(kept) == kept
    assert french_spacing(out) == out  # idempotent


def test_each_marker_is_a_chip_for_its_answer_and_source() -> None:
    other = Hit("Autre texte.", "recits/b.md", "Récit B", "recit", None, 0.1, "c2")
    md = answer_markdown(
        "Le Fonds finance. [1] Un récit le dit? [2] Hors liste [7]",
        [HIT, other],
        grounded=True,
        turn=3,
    )
    assert md.count("(#source-3-1 ") == 2 and md.count("(#source-3-2 ") == 2  # answer + list
    assert "\\[7\\]" in md and "#source-3-7" not in md  # not a citation: stays text
    assert f"dit{NNBSP}?" in md
    # the chip's hover text carries the title, with nothing that could close the link
    assert '"Voir le passage : Guide  b gras /b , p. 2"' in md
    assert parse_chip("3-2") == (3, 2) and parse_chip("#source-0-1") == (0, 1)
    for bad in ("", "3", "a-b", "1-2-3", "-1-2", "3-2; drop"):
        assert parse_chip(bad) is None


def test_reflow_joins_printed_lines_keeps_paragraphs_and_list_items() -> None:
    pdf = (
        "Une convention de partenariat\nprécise les objectifs et la\ndurée.\n\n"
        "Elle prévoit :\n1. la gouvernance ;\n2. les apports\nde chacun ;\n"
        "• la sortie.\n\n\n  Dernier   paragraphe.  "
    )
    assert reflow(pdf) == (
        "Une convention de partenariat précise les objectifs et la durée.\n\n"
        "Elle prévoit :\n1. la gouvernance ;\n2. les apports de chacun ;\n• la sortie.\n\n"
        "Dernier   paragraphe."
    )


def test_a_markdown_source_renders_safely_with_its_highlight() -> None:
    text = (
        "## Mécénat\n\nLe **mécénat** de *compétences* <script>alert(1)</script> "
        "[lien](javascript:alert(1)) ![x](http://ailleurs.example/x.png) ${alert(2)}\n\n"
        "- une étape\n- une autre étape: la fin\n"
    )
    hit = Hit(text, "charte/mecenat.md", "Mécénat", "charte", None, 0.1, "c3")
    out = passage_html(1, hit, ["une autre étape: la fin"])
    assert "<strong>mécénat</strong>" in out and "<em>compétences</em>" in out
    assert "**" not in out and "<h2>" in out and "<li>une étape</li>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<img" not in out and 'href="javascript' not in out and "$" not in out
    assert out.count("<a ") == 1  # only the panel's own link to the document
    assert f"<mark>une autre étape{NBSP}: la fin</mark>" in out
    # a mark never spans two blocks
    two = safe_markdown("Un.\n\n- Deux.", [(0, len("Un.\n\n- Deux."))])
    assert two.count("<mark>") == 2 and "<p><mark>Un.</mark></p>" in two
    assert "<li><mark>Deux.</mark></li>" in two  # the list stays a list


def test_a_web_page_shows_its_indexed_text_and_links_to_the_original() -> None:
    hit = Hit(
        "Texte principal\nde la page.",
        "https://exemple.org/guide",
        "Guide en ligne",
        "boite-a-outils",
        None,
        0.1,
        "c4",
    )
    out = passage_html(2, hit, [])
    assert "Texte principal de la page." in out and "Texte principal de la page, tel" in out
    assert 'href="https://exemple.org/guide"' in out and "Ouvrir la page d'origine" in out
    assert "/archive/" in out
