"""Pure rendering helpers for the web UI: escape untrusted document text, split an answer for
streaming, format citations (each ``[n]`` a chip that opens its passage), reflow and highlight
the quoted sentences of a passage, French typography.

Document text is untrusted: everything that comes from a document goes through ``esc`` (HTML),
``md_escape`` (Markdown shown by the Chatbot) or ``safe_markdown`` (a Markdown source: no HTML,
no link, no image) before it reaches the page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import quote

from markdown_it import MarkdownIt

from assistant.answering.citations import marker, markers
from assistant.indexing.served_files import archive_url, is_web, source_url
from assistant.types import Hit

KIND_LABELS: dict[str, str] = {
    "recit": "Récit",
    "charte": "Charte",
    "boite-a-outils": "Boîte à outils",
    "autre": "Autre",
}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>:])")
# Characters that template engines (JS template strings, Handlebars) might interpret.
_TEMPLATE_CHARS = {"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"}


NNBSP = "\u202f"  # espace fine insécable, before ? ! ; and inside « »
NBSP = "\u00a0"  # espace insécable, before :

# French typography: a (non-breaking) space before ? ! ; : so the sign never starts a line.
_SPACED_SIGN = re.compile(r"[ \t\u00a0\u202f]+([?!;:])")
_GLUED_SIGN = re.compile(r"(?<=[^\W\d_]|[)\]»\u2026])([?!;:])(?=\s|$)")
_OPEN_QUOTE = re.compile(r"«[ \t\u00a0\u202f]*")
_CLOSE_QUOTE = re.compile(r"[ \t\u00a0\u202f]*»")


def french_spacing(text: str) -> str:
    """« Pourquoi? Voici; puis: » -> « Pourquoi ? Voici ; puis : », with non-breaking spaces
    (thin before ? ! ;, plain before :), so no line starts with a sign. URLs and times
    (``http://``, ``10:30``) are left alone: the sign must be followed by a space."""

    def spaced(m: re.Match[str]) -> str:
        return (NBSP if m.group(1) == ":" else NNBSP) + m.group(1)

    text = _SPACED_SIGN.sub(spaced, text)
    text = _GLUED_SIGN.sub(spaced, text)
    text = _OPEN_QUOTE.sub("«" + NNBSP, text)
    return _CLOSE_QUOTE.sub(NNBSP + "»", text)


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


def citation_label(n: int, hit: Hit) -> str:
    """``[n] Titre — Boîte à outils, p. 4`` (plain text, for a radio button label)."""
    page = f", p.{NBSP}{hit.page}" if hit.page else ""
    return f"{marker(n)} {hit.title or hit.source} — {kind_label(hit.kind)}{page}"


CHIP_PREFIX = "#source-"


def chip_anchor(turn: int, n: int) -> str:
    """The link target of chip ``[n]`` of answer ``turn`` (0-based): ``#source-<turn>-<n>``.
    The page's script turns a click on it into « show passage n of that answer »."""
    return f"{CHIP_PREFIX}{turn}-{n}"


def parse_chip(value: str) -> tuple[int, int] | None:
    """``"2-3"`` (or ``"#source-2-3"``) -> (2, 3); None for anything else."""
    m = re.fullmatch(r"(?:#source-)?(\d{1,4})-(\d{1,3})", (value or "").strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def _chip(turn: int, n: int, hit: Hit) -> str:
    title = hit.title or hit.source
    page = f", p. {hit.page}" if hit.page else ""
    # the title attribute is a hover/screen-reader hint: plain characters only
    hint = re.sub(r'["\\()\[\]<>`*_]', " ", f"Voir le passage : {title}{page}")
    return f'[{md_escape(marker(n))}]({chip_anchor(turn, n)} "{hint}")'


def _with_chips(text: str, citations: Sequence[Hit], turn: int) -> str:
    """``text`` as safe Markdown, each ``[n]`` naming a citation made a chip (a link)."""
    out: list[str] = []
    pos = 0
    for start, end, n in markers(text):
        if not 1 <= n <= len(citations):
            continue
        out.append(md_escape(text[pos:start]))
        out.append(_chip(turn, n, citations[n - 1]))
        pos = end
    out.append(md_escape(text[pos:]))
    return "".join(out)


ANSWER_KIND_LABELS = {
    "local-llm": "rédigée par le modèle local",
    "llm": "rédigée par le modèle de langue",
    "extractive": "extraits des documents",
}


def answer_kind_label(kind: str, grounded: bool) -> str:
    """A small line saying who wrote the answer (none for a decline)."""
    return f"\n\n<small>Réponse {ANSWER_KIND_LABELS.get(kind, kind)}</small>" if grounded else ""


def answer_markdown(
    text: str, citations: Sequence[Hit], grounded: bool, turn: int | None = None
) -> str:
    """The answer (escaped, French spacing) followed by its numbered citations: title, kind,
    page. With ``turn`` (the answer's 0-based index in the conversation) every ``[n]`` is a
    chip that opens its passage."""
    text = french_spacing(text)
    body = md_escape(text) if turn is None else _with_chips(text, citations, turn)
    if not citations:
        return body
    head = "**Sources**" if grounded else "**Documents proches**"
    lines = []
    for i, h in enumerate(citations, 1):
        label = french_spacing(citation_label(i, h))
        rest = md_escape(label.removeprefix(marker(i)))
        chip = md_escape(marker(i)) if turn is None else _chip(turn, i, h)
        lines.append(f"- {chip}{rest}")
    return body + "\n\n" + head + "\n\n" + "\n".join(lines)


def _span_pattern(unit: str) -> re.Pattern[str] | None:
    words = unit.split()
    if not words:
        return None
    # between two words: spaces, or a Markdown source's emphasis (« 1. **Étape 1** : »)
    return re.compile(r"(?:\s|[*_])+".join(re.escape(w) for w in words))


def highlight_spans(passage: str, quotes: Sequence[str]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping character spans of ``passage`` holding each quoted sentence
    (whitespace-insensitive). Each line of a quote is looked for on its own: a unit of the
    answer may open with its framing line (« D'après … : »), which is in no passage."""
    spans: list[tuple[int, int]] = []
    for q in (line for unit in quotes for line in unit.split("\n") if line.strip()):
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


# A line that starts a list item keeps its line break when a passage is reflowed.
_LIST_LINE = re.compile(r"^\s*(?:[-–—•*·▪►✓]\s|\d{1,3}[.)]\s|[a-z][.)]\s)")


def reflow(text: str) -> str:
    """A passage's text as paragraphs: the line breaks a PDF puts at the end of each printed
    line are joined with a space; blank lines (paragraphs) and list items are kept."""
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n+", text.strip()):
        lines: list[str] = []
        for raw in block.split("\n"):
            line = raw.strip()
            if not line:
                continue
            if lines and not _LIST_LINE.match(raw):
                lines[-1] = f"{lines[-1]} {line}"
            else:
                lines.append(line)
        if lines:
            paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def is_markdown(source: str) -> bool:
    return not is_web(source) and source.lower().endswith((".md", ".markdown"))


def is_html_file(source: str) -> bool:
    return not is_web(source) and source.lower().endswith((".html", ".htm"))


TEXT_ROUTE = "/texte/"


def text_url(source: str) -> str:
    """Where the page serves the indexed main text of a corpus HTML file (see ui.server)."""
    return TEXT_ROUTE + quote(source, safe="/")


def document_text_page(title: str, text: str, original: str) -> str:
    """A whole HTML page: the main text of a web page as indexed (menus, cookie banners and
    footers removed), reflowed, with a link to the original. Everything escaped."""
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>body{{max-width:46rem;margin:1.5rem auto;"
        "padding:0 1rem;font:1rem/1.55 system-ui,sans-serif;color:#1f2937}"
        ".note{color:#555;font-size:.9rem}</style></head><body>"
        f"<h1>{esc(french_spacing(title))}</h1>"
        "<p class=\"note\">Texte principal de la page, tel qu'indexé par l'assistant (sans "
        f'menus ni bandeaux). <a href="{esc(original)}">Voir la page d\'origine</a></p>'
        f"{_plain_html(reflow(text), [])}</body></html>"
    )


def _markdown_renderer() -> MarkdownIt:
    """CommonMark with raw HTML shown as text, and no link, image or autolink: a Markdown
    source's emphasis, lists and headings render, nothing in it can act."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    md.disable(["image", "link", "autolink", "html_inline", "html_block", "reference"])
    return md


_MD = _markdown_renderer()
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"  # private-use: never in document text


# Markdown syntax opening a line (list item, heading, quote) stays outside a highlight.
_BLOCK_START = re.compile(r"^\s*(?:[-*+]\s+|\d{1,9}[.)]\s+|#{1,6}\s+|>\s*)*")


def _mark_line(line: str) -> str:
    head = _BLOCK_START.match(line)
    cut = head.end() if head else 0
    if not line[cut:].strip():
        return line
    return f"{line[:cut]}{_MARK_OPEN}{line[cut:]}{_MARK_CLOSE}"


def safe_markdown(text: str, spans: Sequence[tuple[int, int]] = ()) -> str:
    """A Markdown source's passage as HTML (see ``_markdown_renderer``), ``spans`` of
    ``text`` highlighted with ``<mark>`` (split per line so a mark never spans blocks)."""
    text = text.replace(_MARK_OPEN, "").replace(_MARK_CLOSE, "")
    marked: list[str] = []
    pos = 0
    for s, e in spans:
        marked.append(french_spacing(text[pos:s]))
        inner = french_spacing(text[s:e]).split("\n")
        marked.append("\n".join(_mark_line(x) for x in inner))
        pos = e
    marked.append(french_spacing(text[pos:]))
    rendered = _MD.render("".join(marked))
    for ch, ent in _TEMPLATE_CHARS.items():
        rendered = rendered.replace(ch, ent)
    return rendered.replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>")


def passage_html(n: int, hit: Hit, quotes: Sequence[str]) -> str:
    """The cited passage in its context with the quoted sentences highlighted, its title and
    page, and a link to the document (at the page, for PDFs). A PDF's or page's text is
    reflowed; a Markdown source is rendered (safely). Every piece of document text is escaped."""
    markdown = is_markdown(hit.source)
    text = hit.text if markdown else reflow(hit.text)
    spans = highlight_spans(text, quotes)
    # spans are found on the text as indexed, then French spacing applied around them
    body = safe_markdown(text, spans) if markdown else _plain_html(text, spans)
    url = source_url(hit.source, hit.page)
    archive = archive_url(hit.source, hit.page)
    web = is_web(hit.source) or is_html_file(hit.source)
    kept = (
        f' · <a class="passage-archive" href="{esc(archive)}" target="_blank" '
        'rel="noopener noreferrer">copie indexée</a>'
        if archive
        else ""
    )
    if is_html_file(hit.source):  # the indexed main text first, the original beside it
        kept = (
            f' · <a class="passage-original" href="{esc(url)}" target="_blank" '
            'rel="noopener noreferrer">page d\'origine</a>'
        )
        url = text_url(hit.source)
    where = f" à la page{NBSP}{hit.page}" if hit.page else ""
    page = f", p.{NBSP}{hit.page}" if hit.page else ""
    what = "le document"
    if web:
        what = "le texte de la page" if is_html_file(hit.source) else "la page d'origine"
    note = (
        '<p class="passage-note">Texte principal de la page, tel qu\'indexé '
        "(sans menus ni bandeaux).</p>"
        if web
        else ""
    )
    return (
        '<div class="passage-card">'
        f'<p class="passage-meta"><strong>{marker(n)} '
        f"{esc(french_spacing(hit.title or hit.source))}"
        f"</strong> — {esc(kind_label(hit.kind))}{esc(page)}</p>"
        f"{note}"
        f'<div class="passage-text">{body}</div>'
        f'<p><a class="passage-link" href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
        f"Ouvrir {what}{esc(where)}</a>{kept}</p>"
        "</div>"
    )


def _plain_html(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Reflowed text as ``<p>`` paragraphs (list items on their own line), ``spans`` marked,
    French spacing applied piece by piece (so the spans keep their offsets)."""
    pieces: list[str] = []
    pos = 0
    for s, e in spans:
        pieces.append(esc(french_spacing(text[pos:s])))
        pieces.append(f"<mark>{esc(french_spacing(text[s:e]))}</mark>")
        pos = e
    pieces.append(esc(french_spacing(text[pos:])))
    body = "".join(pieces)
    return "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in body.split("\n\n"))


def notice_html(message: str, level: str = "info") -> str:
    if not message:
        return ""
    return f'<div class="notice notice-{esc(level)}" role="status">{esc(message)}</div>'
