"""Pure text-cleaning functions shared by the loaders: extracted text in, indexable text out.

Nothing here reads files. The PDF loader chains them as ``clean_pdf_pages(pages)``; HTML and
Markdown go through ``clean_text`` (and ``strip_markdown``).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence

from assistant.text.ligatures import repair_ligatures

# Characters removed outright: soft hyphen, zero-width spaces/joiners, BOM, word joiner.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# Cc (but \t \n), the usual Cf (soft hyphen, zero-width, bidi marks, BOM), Cs and Co.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff\ue000-\uf8ff\U000f0000-\U0010ffff]"
)
_SPACE_LIKE = re.compile(r"[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")

# Left parts that usually form a real compound ("co-construction", "sous-traitance"), so a
# hyphen at a line break after them is kept. Ambiguous ones ("pro-jet", "éco-nomie") are left out.
HYPHEN_PREFIXES: frozenset[str] = frozenset(
    {
        "co", "anti", "auto", "ex", "non", "sous", "vice", "demi", "semi", "mi", "néo", "neo",
        "after", "avant", "après", "arrière", "quasi", "grand", "haut", "post", "nord", "sud",
        "soi", "là", "start", "think", "self", "e", "dix", "vingt", "trente", "quarante",
        "cinquante", "soixante", "quatre",
    }
)  # fmt: skip
# Right parts that are whole words glued by a hyphen ("elle-même", "celle-ci", "a-t-il").
HYPHEN_SUFFIXES: frozenset[str] = frozenset(
    {
        "ci", "là", "même", "mêmes", "être", "t", "il", "ils", "elle", "elles", "on", "nous",
        "vous", "je", "tu", "moi", "toi", "lui", "leur", "leurs", "y", "en", "à", "dire",
        "dessous", "dessus", "delà", "joint", "jointe", "jointes", "parole", "clé", "clés",
        "up", "based",
    }
)  # fmt: skip

_HYPHEN_BREAK = re.compile(r"(?<![\w'’-])([^\W\d_][\w'’-]*?)-\n[ \t]*([^\W\d_][\w'’]*)")
_PAGE_NUMBER = re.compile(
    r"""^\s*(?:
        [-–—]?\s*\d{1,4}\s*[-–—]?                      # 12, - 4 -
      | (?:page|p\.?)\s*\d{1,4}(?:\s*(?:/|sur|of)\s*\d{1,4})?   # page 3 / 8, p. 3
      | \d{1,4}\s*(?:/|sur)\s*\d{1,4}                  # 3/8, 3 sur 8
      | (?=[ivxlcdm])m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})  # xiv
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_TABLE_RULE = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*(?:\n|$)", re.MULTILINE
)
_VOWELS = set("aeiouyàâäéèêëîïôöùûüÿœæ")
_WORDLIKE_LETTERS = set("abcdefghijklmnopqrstuvwxyzàâäçéèêëîïôöùûüÿœæñ")


def normalize_unicode(text: str) -> str:
    """NFKC (splits ligatures ﬁ ﬂ ﬀ ﬃ, folds full-width forms), then drops invisible characters.

    A soft hyphen at a line end means the word continues on the next line, so it is joined.
    """
    text = re.sub(r"\u00ad[ \t]*\r?\n[ \t]*", "", text)
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    return remove_control_chars(text)


def remove_control_chars(text: str) -> str:
    """Drop control, format and private-use characters, keeping newlines and tabs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def normalize_whitespace(text: str) -> str:
    """One space between words, no trailing spaces, at most one blank line between paragraphs.

    Line structure (lists, headings, table rows) is kept.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACE_LIKE.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def vocabulary(text: str) -> frozenset[str]:
    """Lowercased words of ``text`` (hyphenated compounds as one word), as hyphenation evidence."""
    words = {w.lower().replace("’", "'").strip("'-") for w in _WORD.findall(text)}
    return frozenset(words | {w.rsplit("'", 1)[-1] for w in words})


def _word_key(word: str) -> str:
    return word.lower().replace("’", "'").rsplit("'", 1)[-1]


def join_hyphenated(text: str, known: Collection[str] | None = None) -> str:
    """Join words split by a hyphen at a line break ("parte-\\nnariat" -> "partenariat").

    The hyphen is kept (and the break removed) for real compounds: when the right part starts
    with an uppercase letter, the left part is a known prefix (``HYPHEN_PREFIXES``), the right
    part a known suffix (``HYPHEN_SUFFIXES``), or ``known`` (default: ``vocabulary(text)``)
    holds the hyphenated form. When ``known`` holds the joined word, it is joined. Best effort.
    """
    words = vocabulary(text) if known is None else known

    def repl(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        joined, compound = left + right, f"{left}-{right}"
        if _word_key(joined) in words:
            return joined
        if (
            right[0].isupper()
            or _word_key(left.rsplit("-", 1)[-1]) in HYPHEN_PREFIXES
            or right.lower() in HYPHEN_SUFFIXES
            or _word_key(compound) in words
        ):
            return compound
        return joined

    return _HYPHEN_BREAK.sub(repl, text)


def clean_text(text: str) -> str:
    """Unicode, control characters and whitespace cleanup for any extracted text."""
    return normalize_whitespace(normalize_unicode(text))


def is_page_number_line(line: str) -> bool:
    """True for bare page-number lines: "12", "page 3 / 8", "- 4 -", "3 sur 8", "iv"."""
    return bool(line.strip()) and bool(_PAGE_NUMBER.match(line))


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _edge_lines(lines: Sequence[str], edge: int) -> list[str]:
    content = [line for line in lines if line.strip()]
    if len(content) <= 2 * edge:
        return content
    return content[:edge] + content[-edge:]


def running_lines(pages: Sequence[str], edge: int = 3, share: float = 0.5) -> set[str]:
    """Keys (lowercased, digits as #) of lines found among the first/last ``edge`` lines of at
    least ``share`` of the pages: running headers and footers. Needs at least 3 pages."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({_line_key(line) for line in _edge_lines(page.split("\n"), edge)})
    needed = max(2, share * len(pages))
    return {key for key, n in counts.items() if n >= needed and key}


def remove_headers_footers(pages: Sequence[str], edge: int = 3) -> list[str]:
    """Drop running headers/footers (see ``running_lines``) and bare page-number lines found
    among the first/last ``edge`` non-empty lines of each page."""
    running = running_lines(pages, edge)
    cleaned: list[str] = []
    for page in pages:
        lines = page.split("\n")
        content_idx = [i for i, line in enumerate(lines) if line.strip()]
        edges = set(content_idx[:edge] + content_idx[-edge:])
        kept = [
            line
            for i, line in enumerate(lines)
            if not (i in edges and (_line_key(line) in running or is_page_number_line(line)))
        ]
        cleaned.append(normalize_whitespace("\n".join(kept)))
    return cleaned


_GLUED_MARK = re.compile(r"(?<=[a-zà-öø-ÿœ]{3})(\d{1,2})(?=[\s.,;:!?)»]|$)")
_NOTE_LINE = re.compile(r"^(\d{1,2}) +[A-ZÀ-ÖØ-ÞŒ«(]", re.MULTILINE)


def strip_footnote_markers(page: str) -> str:
    """Remove footnote call numbers glued to a word (« alliance1. » -> « alliance. ») when the
    same page has the note itself further down (a line « 1 Texte de la note… »). A number
    glued to a word is kept when no such note follows: it may be part of the text."""
    notes: dict[str, int] = {}
    for match in _NOTE_LINE.finditer(page):
        notes.setdefault(match.group(1), match.start())

    def repl(match: re.Match[str]) -> str:
        note_at = notes.get(match.group(1))
        return "" if note_at is not None and note_at > match.start() else match.group(1)

    return _GLUED_MARK.sub(repl, page) if notes else page


def clean_pdf_pages(pages: Sequence[str]) -> list[str]:
    """Full PDF pipeline: unicode, whitespace, dropped ligatures (« collec vités »),
    headers/footers, hyphen joins using the whole
    document as evidence, then footnote call numbers. One cleaned string per page (maybe
    empty)."""
    basic = [clean_text(page) for page in pages]
    own = vocabulary("\n".join(basic))
    basic = [repair_ligatures(page, own) for page in basic]
    without_running = remove_headers_footers(basic)
    known = vocabulary("\n".join(without_running))
    return [
        strip_footnote_markers(normalize_whitespace(join_hyphenated(page, known)))
        for page in without_running
    ]


def is_wordlike(token: str) -> bool:
    """A token that looks like a French/English word: Latin letters, a vowel, plausible shape."""
    word = token.strip(".,;:!?«»\"“”()[]{}…'’*").lower()
    parts = [p for p in re.split(r"['’-]", word) if p]
    if not parts or len(word) > 30:
        return False
    for part in parts:
        if not set(part) <= _WORDLIKE_LETTERS:
            return False
        if len(part) > 3 and not (set(part) & _VOWELS):
            return False
        if re.search(r"[^aeiouyàâäéèêëîïôöùûüÿœæ]{6,}", part):
            return False
    return any(set(p) & _VOWELS for p in parts) or len(word) <= 3


def word_share(text: str) -> tuple[float, int]:
    """Share of letter-bearing tokens that look like words, and how many such tokens there are.

    Digits-only and punctuation tokens are ignored. Broken font maps give low shares.
    """
    tokens = [t for t in text.split() if any(ch.isalpha() for ch in t)]
    if not tokens:
        return 0.0, 0
    good = sum(1 for t in tokens if is_wordlike(t))
    return good / len(tokens), len(tokens)


def letter_count(text: str) -> int:
    """Number of letters in ``text`` (to tell a page with text from an empty/scanned one)."""
    return sum(1 for ch in text if ch.isalpha())


def strip_markdown(text: str) -> str:
    """Markdown to plain lines: drop heading marks, emphasis, link targets, images, table rules
    and HTML comments; keep headings, list items and table rows as their own lines."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", r"\1", text, flags=re.MULTILINE)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])", r"\1", text)
    text = _TABLE_RULE.sub("", text)
    text = re.sub(r"^([ \t]*)[*+][ \t]+", r"\1- ", text, flags=re.MULTILINE)
    text = re.sub(r"^[ \t]*(?:-{3,}|\*{3,}|_{3,})[ \t]*$", "", text, flags=re.MULTILINE)
    text = re.sub(r"^[ \t]*```.*$", "", text, flags=re.MULTILINE)
    return text
