"""Pure rendering helpers for the web UI: escape untrusted document text, split an answer for
streaming, format citations, highlight the quoted sentences of a passage.

Document text is untrusted: everything that comes from a document goes through ``esc`` (HTML)
or ``md_escape`` (Markdown shown by the Chatbot) before it reaches the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from assistant.indexing.served_files import archive_url, source_url
from assistant.types import Hit

KIND_LABELS: dict[str, str] = {
    "recit": "Récit",
    "charte": "Charte",
    "boite-a-outils": "Boîte à outils",
    "autre": "Autre",
}

_MARKER_END = re.compile(r"(?<=\])\s+")
_UNIT = re.compile(r"(.+?)\s*\[(\d+)\](?=\s|$)", re.DOTALL)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>:])")
# Characters that template engines (JS template strings, Handlebars) might interpret.
_TEMPLATE_CHARS = {"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"}


def esc(text: str) -> str:
    """HTML-escape untrusted text, quotes and template characters included."""
    out = html.escape(text, quote=True)
    for ch, ent in _TEMPLATE_CHARS.items():
        out = out.replace(ch, ent)
    return out


def md_escape(text: str) -> str:
    """Untrusted text as Markdown that renders literally: no HTML, no links, no emphasis."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def stream_steps(text: str) -> list[str]:
    """Growing prefixes of an answer, one more sentence (ending with its [n]) each time."""
    parts = [p for p in _MARKER_END.split(text.strip()) if p]
    steps: list[str] = []
    current = ""
    for part in parts:
        current = f"{current} {part}" if current else part
        steps.append(current)
    return steps or [text]


def quoted_units(answer_text: str) -> list[tuple[str, int]]:
    """(quoted text, citation number) pairs of an answer whose units end with ``[n]``."""
    return [
        (m.group(1).strip(), int(m.group(2)))
        for m in _UNIT.finditer(answer_text)
        if m.group(1).strip()
    ]


def citation_label(n: int, hit: Hit) -> str:
    """``[n] Titre — Boîte à outils, p. 4`` (plain text, for a radio button label)."""
    page = f", p. {hit.page}" if hit.page else ""
    return f"[{n}] {hit.title or hit.source} — {kind_label(hit.kind)}{page}"


ANSWER_KIND_LABELS = {
    "local-llm": "rédigée par le modèle local",
    "llm": "rédigée par le modèle de langue",
    "extractive": "extraits des documents",
}


def answer_kind_label(kind: str, grounded: bool) -> str:
    """A small line saying who wrote the answer (none for a decline)."""
    return f"\n\n<small>Réponse {ANSWER_KIND_LABELS.get(kind, kind)}</small>" if grounded else ""


def answer_markdown(text: str, citations: Sequence[Hit], grounded: bool) -> str:
    """The answer (escaped) followed by its numbered citations: title, kind, page."""
    body = md_escape(text)
    if not citations:
        return body
    head = "**Sources**" if grounded else "**Documents à consulter**"
    lines = [f"{md_escape(citation_label(i, h))}" for i, h in enumerate(citations, 1)]
    return body + "\n\n" + head + "\n\n" + "\n".join(lines)


def _span_pattern(unit: str) -> re.Pattern[str] | None:
    words = unit.split()
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words))


def highlight_spans(passage: str, quotes: Sequence[str]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping character spans of ``passage`` holding each quoted sentence
    (whitespace-insensitive)."""
    spans: list[tuple[int, int]] = []
    for q in quotes:
        pat = _span_pattern(q)
        m = pat.search(passage) if pat else None
        if m:
            spans.append((m.start(), m.end()))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def passage_html(n: int, hit: Hit, quotes: Sequence[str]) -> str:
    """The cited passage in its context with the quoted sentences highlighted, and a link
    to the document (at the page, for PDFs). Every piece of document text is escaped."""
    text = hit.text
    pieces: list[str] = []
    pos = 0
    for s, e in highlight_spans(text, quotes):
        pieces.append(esc(text[pos:s]))
        pieces.append(f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    pieces.append(esc(text[pos:]))
    url = source_url(hit.source, hit.page)
    archive = archive_url(hit.source, hit.page)
    kept = (
        f' · <a class="passage-archive" href="{esc(archive)}" target="_blank" '
        'rel="noopener noreferrer">copie indexée</a>'
        if archive
        else ""
    )
    where = f" à la page {hit.page}" if hit.page else ""
    page = f", p. {hit.page}" if hit.page else ""
    return (
        '<div class="passage-card">'
        f'<p class="passage-meta"><strong>[{n}] {esc(hit.title or hit.source)}</strong>'
        f" — {esc(kind_label(hit.kind))}{esc(page)}</p>"
        f'<div class="passage-text">{"".join(pieces)}</div>'
        f'<p><a class="passage-link" href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
        f"Ouvrir {'la page' if archive else 'le document'}{esc(where)}</a>{kept}"
        f' <span class="passage-source">({esc(hit.source)})</span></p>'
        "</div>"
    )


def notice_html(message: str, level: str = "info") -> str:
    if not message:
        return ""
    return f'<div class="notice notice-{esc(level)}" role="status">{esc(message)}</div>'
