"""Pure rendering helpers of the UI: escaping, streaming steps, citations, highlighting."""

from __future__ import annotations

import pytest

from assistant.types import Hit
from ui.render import (
    answer_markdown,
    esc,
    highlight_spans,
    md_escape,
    passage_html,
    quoted_units,
    stream_steps,
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
    assert "Boîte à outils, p\\. 2" in md
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
    assert "<mark>Le Fonds ODD 17 finance le temps\nde coordination.</mark>" in out
    assert "<b>" not in out and "&lt;b&gt;gras&lt;/b&gt;" in out
    assert 'href="/sources/boite-a-outils/guide%20d%27%C3%A9t%C3%A9.pdf#page=2"' in out
