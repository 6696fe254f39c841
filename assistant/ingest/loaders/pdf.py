"""PDF to cleaned page texts with pypdf, refusing files that would only index noise.

``read_pdf(data, source, passwords)`` returns ``PdfPages``: the cleaned text of every page that
has some, numbered from 1, plus warnings. Failures raise ``DocumentError`` with a French reason.
"""

from __future__ import annotations

import io
import itertools
import logging
import re
import statistics
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from assistant.errors import DocumentError
from assistant.ingest.budget import ReadBudget, guarded_pages
from assistant.text.cleaning import clean_pdf_pages, letter_count, word_share

logger = logging.getLogger(__name__)

# pypdf parses untrusted bytes; besides its own errors, damaged files surface as these.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    PyPdfError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    AssertionError,
    RecursionError,
    OSError,
    zlib.error,
)

PARAGRAPH_GAP = 1.4  # a line step this many times the usual one starts a paragraph
MIN_PAGE_LETTERS = 8  # below this a page counts as "sans texte" (scan, picture, blank)
MIN_WORD_SHARE = 0.5  # below this share of word-like tokens the text is noise
MIN_STOPWORD_SHARE = 0.04  # French/English prose has ~0.3; shifted glyph maps ~0.01
_STOPWORDS = frozenset(
    {
        "le", "la", "les", "de", "des", "du", "un", "une", "et", "à", "au", "aux", "en", "pour",
        "par", "sur", "dans", "que", "qui", "est", "sont", "avec", "ne", "pas", "ce", "ces", "son",
        "sa", "ses", "leur", "leurs", "il", "elle", "nous", "vous", "on", "se", "plus", "ou",
        "the", "of", "and", "to", "in", "is", "for", "that", "with", "are", "as", "by", "be",
        "this", "it", "der", "die", "das", "und", "el", "los", "y",
    }
)  # fmt: skip
_MEANINGLESS_TITLE = re.compile(
    r"^(untitled|sans titre|document\d*|titre|title|pr[ée]sentation powerpoint"
    r"|powerpoint presentation|microsoft (word|powerpoint).*|.*\.(docx?|pdf|pptx?|indd|odt))$",
    re.IGNORECASE,
)


@dataclass
class PdfPages:
    """Cleaned text per page with text (``numbered`` holds (1-based page, text))."""

    numbered: list[tuple[int, str]]
    page_count: int
    title: str | None  # from /Title metadata or the first line of page 1
    warnings: list[str] = field(default_factory=list)


def read_pdf(
    data: bytes, source: str, passwords: Sequence[str] = (), budget: ReadBudget | None = None
) -> PdfPages:
    """Extract, clean and check every page of a PDF given as bytes (within ``budget``)."""
    if b"%PDF-" not in data[:1024]:
        raise DocumentError(source, "fichier PDF invalide — no %PDF- header")
    if b"%%EOF" not in data[-2048:]:
        raise DocumentError(source, "PDF tronqué ou corrompu — no %%EOF marker at end of file")
    try:
        reader = PdfReader(io.BytesIO(data))
        _decrypt(reader, source, passwords)
        page_count = len(reader.pages)
        raw_pages: list[str] = []
        unreadable: list[int] = []
        for number, page in enumerate(guarded_pages(reader, source, budget), start=1):
            try:
                raw_pages.append(_page_text(page))
            except _PARSE_ERRORS as exc:  # one damaged page: skip it, keep the others
                logger.warning("%s: page %d unreadable: %r", source, number, exc)
                raw_pages.append("")
                unreadable.append(number)
        meta_title = _metadata_title(reader)
    except DocumentError:
        raise
    except FileNotDecryptedError as exc:
        raise DocumentError(source, f"PDF chiffré : mot de passe requis — {exc}") from exc
    except _PARSE_ERRORS as exc:
        raise DocumentError(source, f"PDF tronqué ou corrompu — {exc!r}") from exc
    if page_count == 0:
        raise DocumentError(source, "PDF sans page")
    if len(unreadable) == page_count:
        raise DocumentError(source, "PDF tronqué ou corrompu — no page could be read")

    cleaned = clean_pdf_pages(raw_pages)
    numbered = [
        (number, text)
        for number, text in enumerate(cleaned, start=1)
        if letter_count(text) >= MIN_PAGE_LETTERS
    ]
    if not numbered:
        raise DocumentError(source, "pas de couche texte (OCR nécessaire)")
    _check_not_garbage(source, "\n".join(text for _, text in numbered))

    warnings: list[str] = []
    if unreadable:
        s = "s" if len(unreadable) > 1 else ""
        warnings.append(f"page{s} illisible{s} : {', '.join(map(str, unreadable))}")
    empty = page_count - len(numbered) - len(unreadable)
    if empty:
        warnings.append(f"{empty} page{'s' if empty > 1 else ''} sans texte")
    first_line = _first_line(cleaned[0]) if cleaned else None
    return PdfPages(numbered, page_count, meta_title or first_line, warnings)


def _decrypt(reader: PdfReader, source: str, passwords: Sequence[str]) -> None:
    """Open an encrypted PDF with "" (owner-only protection) or one of ``passwords``."""
    if not reader.is_encrypted:
        return
    for password in ("", *passwords):
        try:
            if reader.decrypt(password) != PasswordType.NOT_DECRYPTED:
                return
        except (DependencyError, NotImplementedError) as exc:
            reason = f"PDF chiffré : chiffrement non pris en charge — {exc}"
            raise DocumentError(source, reason) from exc
    if passwords:
        raise DocumentError(source, "PDF chiffré : mot de passe incorrect")
    raise DocumentError(source, "PDF chiffré : mot de passe requis")


def _page_text(page: PageObject) -> str:
    """Plain pypdf text with blank lines where the vertical gap between lines says
    "new paragraph"; falls back to the plain text if the reconstruction disagrees with it."""
    fragments: list[_Fragment] = []

    def visitor(text: str, cm: Any, tm: Any, font_dict: Any, font_size: Any) -> None:
        y = size = None
        if text.strip() and tm is not None and cm is not None:
            y = float(tm[4]) * float(cm[1]) + float(tm[5]) * float(cm[3]) + float(cm[5])
            size = abs(float(font_size or 0) * float(tm[3]) * float(cm[3])) or None
        fragments.append(_Fragment(text, y, size))

    plain = page.extract_text(visitor_text=visitor)
    joined = "".join(f.text for f in fragments)
    if " ".join(joined.split()) != " ".join(plain.split()):
        return plain
    return _with_paragraph_breaks(fragments) or plain


@dataclass
class _Fragment:
    text: str
    y: float | None  # baseline, in page units (up is positive)
    size: float | None  # font height, in page units


def _lines(fragments: Sequence[_Fragment]) -> list[_Fragment]:
    """Fragments merged into lines; a line takes the position and size of its first text."""
    lines: list[_Fragment] = []
    current = _Fragment("", None, None)
    for fragment in fragments:
        for i, piece in enumerate(fragment.text.split("\n")):
            if i > 0:
                lines.append(current)
                current = _Fragment("", None, None)
            current.text += piece
            if current.y is None and piece.strip():
                current.y, current.size = fragment.y, fragment.size
    lines.append(current)
    return [line for line in lines if line.text.strip()]


def _with_paragraph_breaks(fragments: Sequence[_Fragment]) -> str:
    """Join lines, adding a blank line where the step down, measured in font heights, is well
    above the page's usual line step (or where the text jumps up: a new column or block)."""
    lines = _lines(fragments)
    steps: list[float | None] = [None]
    for above, below in itertools.pairwise(lines):
        if above.y is None or below.y is None or not below.size:
            steps.append(None)
        else:
            steps.append((above.y - below.y) / below.size)
    positive = [s for s in steps if s is not None and s > 0.05]
    if not positive:
        return "\n".join(line.text for line in lines)
    # The usual step: the smallest one, ignoring tiny ones (superscripts, jitter).
    usual = min(s for s in positive if s >= 0.4 * statistics.median(positive))
    out: list[str] = []
    for line, step in zip(lines, steps, strict=True):
        if out and step is not None and (step > PARAGRAPH_GAP * usual or step < -usual):
            out.append("")
        out.append(line.text)
    return "\n".join(out)


def _metadata_title(reader: PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except _PARSE_ERRORS:
        return None
    return meaningful_title(title)


def meaningful_title(title: object) -> str | None:
    """``title`` stripped, or None when it is empty or a placeholder ("Untitled", "Doc1.docx")."""
    if not isinstance(title, str):
        return None
    title = " ".join(title.split())
    if letter_count(title) < 3 or _MEANINGLESS_TITLE.match(title):
        return None
    return title[:200]


_MAX_TITLE_WORDS = 16


def _first_line(text: str) -> str | None:
    """The first line of page 1 when it reads like a title: short, not ending like a sentence
    part (« . , ; : »), and not wrapped on to the next line (which would start in lower case).
    Otherwise None, and the loader names the document after its file."""
    lines = [line.strip() for line in text.split("\n") if letter_count(line) >= 3]
    if not lines:
        return None
    first = lines[0]
    follows = lines[1] if len(lines) > 1 else ""
    if (
        len(first.split()) > _MAX_TITLE_WORDS
        or first.endswith((".", ",", ";", ":", "-"))
        or (follows[:1].islower() and not first.endswith(("?", "!")))
    ):
        return None
    return first if len(first) <= 120 else first[:117].rstrip() + "…"


def _check_not_garbage(source: str, text: str) -> None:
    """Raise when the text is mostly non-words (a broken font map): indexing it would be noise."""
    share, tokens = word_share(text)
    if tokens >= 5 and share < MIN_WORD_SHARE:
        raise DocumentError(
            source,
            f"texte illisible (police mal encodée) — only {share:.0%} of tokens look like words",
        )
    words = [w.strip(".,;:!?«»\"()'’").lower() for w in text.split()]
    stop = sum(1 for w in words if w in _STOPWORDS)
    if tokens >= 80 and stop / len(words) < MIN_STOPWORD_SHARE:
        raise DocumentError(
            source,
            f"texte illisible (police mal encodée) — only {stop} common words in {len(words)}",
        )
