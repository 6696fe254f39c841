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
from assistant.ingest.loaders.structure import (
    MAX_HEADING_WORDS,
    Block,
    BlockBuilder,
    blocks_from_text,
    heading_key,
)
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
    blocks: list[Block] = field(default_factory=list)  # structure, pages in ``Block.page``


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
        headings: dict[str, float] = {}
        for number, page in enumerate(guarded_pages(reader, source, budget), start=1):
            try:
                raw_pages.append(_page_text(page, headings))
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
    blocks = _blocks(numbered, headings)
    return PdfPages(numbered, page_count, meta_title or first_line, warnings, blocks)


def _blocks(numbered: Sequence[tuple[int, str]], headings: dict[str, float]) -> list[Block]:
    """The document's blocks: lines set in a larger or bold font are headings, the larger the
    higher; numbered headings and list markers are read from the text itself."""
    sizes = sorted(set(headings.values()), reverse=True)
    levels = {key: 1 + min(sizes.index(size), 2) for key, size in headings.items()}
    builder = BlockBuilder()
    for number, text in numbered:
        blocks_from_text(text, number, builder, levels)
    return builder.blocks


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


def _page_text(page: PageObject, headings: dict[str, float] | None = None) -> str:
    """Plain pypdf text with blank lines where the vertical gap between lines says
    "new paragraph"; falls back to the plain text if the reconstruction disagrees with it.
    Lines set larger than the page's body text, or wholly in bold, are isolated as their own
    paragraph and recorded in ``headings`` (key -> size; bold counts a little below larger)."""
    fragments: list[_Fragment] = []

    def visitor(text: str, cm: Any, tm: Any, font_dict: Any, font_size: Any) -> None:
        x = y = size = None
        if text.strip() and tm is not None and cm is not None:
            x = float(tm[4]) * float(cm[0]) + float(tm[5]) * float(cm[2]) + float(cm[4])
            y = float(tm[4]) * float(cm[1]) + float(tm[5]) * float(cm[3]) + float(cm[5])
            size = abs(float(font_size or 0) * float(tm[3]) * float(cm[3])) or None
        font = str(font_dict.get("/BaseFont", "")) if isinstance(font_dict, dict) else ""
        bold = bool(_BOLD.search(font))
        fragments.append(_Fragment(text, y, size, bold, x=x))

    plain = page.extract_text(visitor_text=visitor)
    joined = "".join(f.text for f in fragments)
    if " ".join(joined.split()) != " ".join(plain.split()):
        return plain
    return _with_paragraph_breaks(with_tables(fragments), headings) or plain


_BOLD = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
HEADING_SIZE = 1.15  # a line this many times the body font size is a heading


@dataclass
class _Fragment:
    text: str
    y: float | None  # baseline, in page units (up is positive)
    size: float | None  # font height, in page units
    bold: bool = False
    all_bold: bool = True  # (lines) every fragment with text is bold
    x: float | None = None  # left edge of the text, in page units


# -- tables ------------------------------------------------------------------------------------
# A table is found from positions alone, whatever order the cells are drawn in: a header line of
# at least MIN_TABLE_COLUMNS short pieces at distinct x, then lines whose every piece starts at
# one of those x and fits before the next column. A taller gap between lines starts a new row.
MIN_TABLE_COLUMNS = 3
MIN_TABLE_ROWS = 2  # body rows, the header not counted
COLUMN_TOLERANCE = 2.0  # page units (1/72 in) a cell may start off its column
MAX_HEADER_CELL_WORDS = 6
CHAR_WIDTH = 0.45  # a character's mean width, in font heights (for the width of a piece)


def with_tables(fragments: Sequence[_Fragment]) -> list[_Fragment]:
    """``fragments`` with each table they draw replaced by one fragment holding the table as
    pipe rows (« | Étape | Qui pilote | … | »), at the place of its header."""
    pieces = [f for f in fragments if f.text.strip() and f.x is not None and f.y is not None]
    tables = _find_tables(pieces)
    if not tables:
        return list(fragments)
    owner = {id(f): t for t, (members, _) in enumerate(tables) for f in members}
    out: list[_Fragment] = []
    placed: set[int] = set()
    for fragment in fragments:
        t = owner.get(id(fragment))
        if t is None:
            if not (fragment.text.strip() == "" and out and out[-1].text.startswith("\n|")):
                out.append(fragment)
            continue
        if t in placed:
            continue
        placed.add(t)
        members, rows = tables[t]
        head = members[0]
        body = "\n".join("| " + " | ".join(row) + " |" for row in rows)
        out.append(_Fragment(f"\n{body}\n", head.y, head.size, False, x=head.x))
    return out


def _visual_lines(pieces: Sequence[_Fragment]) -> list[list[_Fragment]]:
    """Pieces grouped by baseline, top of the page first, each line left to right."""
    ordered = sorted(pieces, key=lambda f: (-(f.y or 0.0), f.x or 0.0))
    lines: list[list[_Fragment]] = []
    for piece in ordered:
        if lines and abs((lines[-1][0].y or 0.0) - (piece.y or 0.0)) <= 0.3 * (piece.size or 1.0):
            lines[-1].append(piece)
        else:
            lines.append([piece])
    return [sorted(line, key=lambda f: f.x or 0.0) for line in lines]


def _width(piece: _Fragment) -> float:
    return len(piece.text.strip()) * CHAR_WIDTH * (piece.size or 10.0)


def _column_of(piece: _Fragment, columns: Sequence[float]) -> int | None:
    """The column a piece starts in, when it starts at one and ends before the next."""
    for c, x in enumerate(columns):
        if abs((piece.x or 0.0) - x) <= COLUMN_TOLERANCE:
            if c + 1 < len(columns) and (piece.x or 0.0) + _width(piece) > columns[c + 1] + 8:
                return None
            return c
    return None


def _find_tables(
    pieces: Sequence[_Fragment],
) -> list[tuple[list[_Fragment], list[tuple[str, ...]]]]:
    """(member pieces, rows with the header first) of each table among ``pieces``."""
    lines = _visual_lines(pieces)
    tables: list[tuple[list[_Fragment], list[tuple[str, ...]]]] = []
    i = 0
    while i < len(lines):
        header = lines[i]
        xs = [f.x or 0.0 for f in header]
        if (
            len(header) < MIN_TABLE_COLUMNS
            or any(b - a <= COLUMN_TOLERANCE for a, b in itertools.pairwise(xs))
            or any(_column_of(f, xs) is None for f in header)
        ):
            i += 1
            continue
        # a header cell may wrap: lines of lower-case pieces right below it continue it
        cells = [[f.text.strip()] for f in header]
        j = i + 1
        while j < len(lines) and _continues_header(lines[j - 1], lines[j], xs):
            for f in lines[j]:
                cells[_column_of(f, xs) or 0].append(f.text.strip())
            j += 1
        head_row = tuple(" ".join(" ".join(c).split()) for c in cells)
        if not all(_header_cell(c) for c in head_row):
            i += 1
            continue
        first_body = j
        body: list[list[_Fragment]] = []
        while j < len(lines) and all(_column_of(f, xs) is not None for f in lines[j]):
            body.append(lines[j])
            j += 1
        rows = _rows(body, xs)
        if (
            len(rows) < MIN_TABLE_ROWS
            or not any(len(line) > 1 for line in body)
            or not _header_apart(lines[first_body - 1], body)
        ):
            i += 1
            continue
        members = [f for line in lines[i:first_body] for f in line]
        members += [f for line in body for f in line]
        tables.append((members, [head_row, *rows]))
        i = j
    return tables


def _header_apart(header: Sequence[_Fragment], body: Sequence[Sequence[_Fragment]]) -> bool:
    """Whether the header stands apart as a row: the step down to the first body line is taller
    than the line step inside cells. Lines of prose columns follow each other at one step."""
    ys = [header[0].y or 0.0, *(line[0].y or 0.0 for line in body)]
    steps = [a - b for a, b in itertools.pairwise(ys)]
    inner = [s for s in steps[1:] if s > 0]
    return not inner or steps[0] > 1.3 * min(inner)


def _continues_header(
    above: Sequence[_Fragment], line: Sequence[_Fragment], xs: Sequence[float]
) -> bool:
    """A line right below a header line (one line step) whose pieces, all in columns, start in
    lower case: the wrapped end of header cells (« Exemples de coûts à / prévoir »)."""
    step = (above[0].y or 0.0) - (line[0].y or 0.0)
    return (
        step <= 1.6 * (line[0].size or 10.0)
        and all(f.text.strip()[:1].islower() for f in line)
        and all(_column_of(f, xs) is not None for f in line)
    )


def _header_cell(text: str) -> bool:
    """A column title: short, starts with a capital or a digit, has letters, and does not stop
    mid-phrase (on « de », « les », a comma): what aligned lines of prose columns lack."""
    words = text.split()
    if not words or len(words) > MAX_HEADER_CELL_WORDS or not any(c.isalpha() for c in text):
        return False
    if not (text[0].isupper() or text[0].isdigit() or text[0] in '«"('):
        return False
    last = words[-1].lower().rstrip("'’")
    return not text.endswith((",", ";", "-")) and last not in _HEADER_JOINERS


_HEADER_JOINERS = frozenset({
    "le", "la", "les", "l", "de", "du", "des", "d", "un", "une", "et", "ou", "à", "au", "aux",
    "en", "par", "pour", "sur", "dans", "avec", "que", "qui", "son", "sa", "ses", "leur",
    "leurs", "ce", "cette", "ces", "votre", "vos", "notre", "nos", "the", "of", "and", "to",
})  # fmt: skip


def _rows(body: Sequence[Sequence[_Fragment]], columns: Sequence[float]) -> list[tuple[str, ...]]:
    """Body lines gathered into rows: a line step taller than the smallest one in the table
    starts a new row (cells wrap at the smaller step), and a row's cells join their lines."""
    if not body:
        return []
    ys = [line[0].y or 0.0 for line in body]
    steps = [a - b for a, b in itertools.pairwise(ys)]
    least = min((s for s in steps if s > 0), default=0.0)
    groups: list[list[Sequence[_Fragment]]] = [[body[0]]]
    for line, step in zip(body[1:], steps, strict=True):
        if step > 1.3 * least:
            groups.append([line])
        else:
            groups[-1].append(line)
    rows: list[tuple[str, ...]] = []
    for group in groups:
        cells: list[list[str]] = [[] for _ in columns]
        for line in group:
            for piece in line:
                c = _column_of(piece, columns)
                if c is not None:
                    cells[c].append(piece.text.strip())
        rows.append(tuple(" ".join(" ".join(cell).split()) for cell in cells))
    return rows


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
            if piece.strip():
                current.all_bold = current.all_bold and fragment.bold
            if current.y is None and piece.strip():
                current.y, current.size = fragment.y, fragment.size
    lines.append(current)
    return [line for line in lines if line.text.strip()]


def _with_paragraph_breaks(
    fragments: Sequence[_Fragment], headings: dict[str, float] | None = None
) -> str:
    """Join lines, adding a blank line where the step down, measured in font heights, is well
    above the page's usual line step (or where the text jumps up: a new column or block)."""
    lines = _merge_heading_lines(_lines(fragments), headings)
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


def _heading_rank(line: _Fragment, body: float) -> float | None:
    words = line.text.split()
    if not line.size or not words or len(words) > MAX_HEADING_WORDS:
        return None
    if sum(c.isalpha() for c in line.text) < 3 or line.text.rstrip().endswith((".", ",", ";")):
        return None
    if line.size >= HEADING_SIZE * body:
        return round(line.size, 1)
    if line.all_bold and line.size >= 0.95 * body:
        return round(line.size, 1) - 0.5
    return None


def _merge_heading_lines(
    lines: list[_Fragment], headings: dict[str, float] | None
) -> list[_Fragment]:
    """Heading lines (larger or bold) joined when a heading wraps, kept apart by paragraph
    breaks, and recorded in ``headings``."""
    if headings is None:
        return lines
    sizes = [line.size for line in lines if line.size]
    if not sizes:
        return lines
    weights: dict[float, int] = {}
    for line in lines:
        if line.size:
            weights[round(line.size, 1)] = weights.get(round(line.size, 1), 0) + len(line.text)
    body = max(weights, key=lambda s: weights[s])  # the size most text is set in
    out: list[_Fragment] = []
    ranks: list[float | None] = []
    for line in lines:
        rank = _heading_rank(line, body)
        if (
            rank is not None
            and out
            and ranks[-1] == rank
            and len((out[-1].text + " " + line.text).split()) <= MAX_HEADING_WORDS
            and (line.text.strip()[:1].islower() or not out[-1].text.rstrip().endswith(("?", "!")))
            and _wrapped_heading(out[-1].text, line.text)
        ):
            out[-1] = _Fragment(
                f"{out[-1].text.rstrip()} {line.text.strip()}", out[-1].y, out[-1].size, True
            )
            continue
        out.append(line)
        ranks.append(rank)
    for line, rank in zip(out, ranks, strict=True):
        if rank is not None:
            headings[heading_key(line.text)] = rank
            line.text = f"\n{line.text.strip()}\n"
    return out


def _wrapped_heading(first: str, second: str) -> bool:
    """Two heading lines in a row are one wrapped heading when the second starts in lower case
    or the first ends on a joining word or a colon (« Mode 2 : les pratiques / responsables »)."""
    s = second.strip()
    last = first.rsplit(maxsplit=1)[-1].lower() if first.strip() else ""
    return s[:1].islower() or s[:1] in "?!:»" or last in {"de", "du", "des", "et", "la", "le"}


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
