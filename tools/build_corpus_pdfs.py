"""Render the sample corpus Markdown sources to PDF.

Every ``corpus/_src/<folder>/<slug>.md`` becomes ``corpus/<folder>/<slug>.pdf``. The source
dialect (front matter, headings, paragraphs, lists, pipe tables, ``>`` notes, footnotes,
``<!-- pagebreak -->``) is described in ``corpus/README.md``. Output is deterministic: the
creation date comes from the front matter and the producer is fixed, so re-running the build
gives byte-identical files; the PDF keywords carry a hash of the source (``source_stamp``) so
``tests/test_corpus.py`` can check that every PDF is up to date.

Usage: ``python tools/build_corpus_pdfs.py [--only SLUG] [--src DIR] [--out DIR]``
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

ROOT = Path(__file__).resolve().parents[1]
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
FONT = "DejaVu"
PRODUCER = "Alliance build_corpus_pdfs"
BUILD_VERSION = 1  # bump when the rendering changes, so tests flag every PDF as stale
FOOTER = "Alliance — exemple | page {page} / {nb}"
LAYOUTS = ("report", "two-columns", "plain")
DEFAULT_DATE = datetime(2020, 1, 1, tzinfo=UTC)

BODY_SIZE = 11.0
LINE = BODY_SIZE * 1.45 * 25.4 / 72  # mm, ~5.6
MARGIN = 22.0
COL_GAP = 8.0
HEADING_SIZES = {1: 16.0, 2: 13.5, 3: 11.5}
SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
NOTE_FILL = (236, 240, 245)
HEAD_FILL = (225, 230, 238)
CELL_PAD = 1.5


# --------------------------------------------------------------------------- parsing


@dataclass
class Block:
    """One block of the source: heading, paragraph, bullet, number, table, note, pagebreak..."""

    kind: str
    text: str = ""
    level: int = 0
    marker: str = ""
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Source:
    """A parsed Markdown source: front matter, blocks and footnote definitions."""

    meta: dict[str, str]
    blocks: list[Block]
    footnotes: dict[str, str]


FRONT_RE = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
FOOTDEF_RE = re.compile(r"^\[\^([^\]]+)\]:\s*(.*)$")
HEADING_RE = re.compile(r"^(#{1,3})\s+(.*?)\s*#*\s*$")
BULLET_RE = re.compile(r"^(\s*)[-*+]\s+(.*)$")
NUMBER_RE = re.compile(r"^(\s*)(\d+[.)])\s+(.*)$")
TABLE_SEP_RE = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
PAGEBREAK_RE = re.compile(r"^<!--\s*pagebreak\s*-->$", re.I)
COMMENT_RE = re.compile(r"<!--.*?-->", re.S)


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """Split ``key: value`` front matter from the body; ``# comment`` tails are dropped."""
    match = FRONT_RE.match(text)
    if not match:
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).splitlines():
        if not line.strip() or line.lstrip().startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        value = re.sub(r"\s+#\s.*$", "", value).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        meta[key.strip().lower()] = value
    return meta, text[match.end() :]


def split_cells(line: str) -> list[str]:
    """Split a pipe-table row into stripped cells (``\\|`` stays a literal pipe)."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells = re.split(r"(?<!\\)\|", line)
    return [cell.replace("\\|", "|").strip() for cell in cells]


def parse_source(text: str) -> Source:
    """Parse the corpus Markdown dialect into blocks."""
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    meta, body = parse_front_matter(text)
    footnotes: dict[str, str] = {}
    lines: list[str] = []
    current_def: str | None = None
    for raw in body.split("\n"):
        match = FOOTDEF_RE.match(raw.strip())
        if match:
            current_def = match.group(1)
            footnotes[current_def] = match.group(2).strip()
            continue
        if current_def and raw.startswith("    ") and raw.strip():
            footnotes[current_def] += " " + raw.strip()
            continue
        current_def = None
        lines.append(raw)
    return Source(meta, list(_blocks(lines)), footnotes)


def _blocks(lines: list[str]) -> Iterator[Block]:
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        if PAGEBREAK_RE.match(stripped):
            yield Block("pagebreak")
            i += 1
            continue
        if stripped.startswith("<!--"):
            while i < len(lines) and "-->" not in lines[i]:
                i += 1
            i += 1
            continue
        heading = HEADING_RE.match(stripped)
        if heading:
            yield Block("heading", heading.group(2), level=len(heading.group(1)))
            i += 1
            continue
        if re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", stripped):
            yield Block("rule")
            i += 1
            continue
        if stripped.startswith(">"):
            paras: list[list[str]] = [[]]
            while i < len(lines) and lines[i].strip().startswith(">"):
                content = lines[i].strip()[1:].strip()
                if content:
                    paras[-1].append(content)
                elif paras[-1]:
                    paras.append([])
                i += 1
            yield Block("note", "\n".join(" ".join(p) for p in paras if p))
            continue
        if stripped.startswith("|"):
            rows: list[list[str]] = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                if not TABLE_SEP_RE.match(lines[i].strip()):
                    rows.append(split_cells(lines[i]))
                i += 1
            yield Block("table", rows=rows)
            continue
        item = BULLET_RE.match(line) or NUMBER_RE.match(line)
        if item:
            numbered = item.re is NUMBER_RE
            indent = len(item.group(1)) // 2
            marker = item.group(2) if numbered else "•"
            parts = [item.group(3) if numbered else item.group(2)]
            i += 1
            while i < len(lines) and lines[i].strip() and not _starts_block(lines[i]):
                parts.append(lines[i].strip())
                i += 1
            kind = "number" if numbered else "bullet"
            yield Block(kind, " ".join(parts), level=indent, marker=marker)
            continue
        parts = [stripped]
        i += 1
        while i < len(lines) and lines[i].strip() and not _starts_block(lines[i]):
            parts.append(lines[i].strip())
            i += 1
        yield Block("para", " ".join(parts))


def _starts_block(line: str) -> bool:
    stripped = line.strip()
    return bool(
        HEADING_RE.match(stripped)
        or BULLET_RE.match(line)
        or NUMBER_RE.match(line)
        or stripped.startswith(("|", ">", "<!--"))
    )


# ------------------------------------------------------------------- inline markup

INLINE_RE = re.compile(
    r"\*\*(?P<bold>.+?)\*\*"
    r"|(?<![\w*])\*(?P<ital>[^*\s](?:[^*]*?[^*\s])?)\*(?![\w*])"
    r"|\[\^(?P<fn>[^\]]+)\]"
    r"|\[(?P<label>[^\]]+)\]\((?P<url>[^)]*)\)"
    r"|`(?P<code>[^`]+)`"
)
_MD_SPECIALS = re.compile(r"(\*\*|__|--|~~|\\)")


def _escape(text: str) -> str:
    """Escape fpdf2 markdown markers so the writer's text stays literal."""
    return _MD_SPECIALS.sub(lambda m: "\\" + m.group(1), text)


def to_fpdf_markdown(text: str, refs: list[str] | None = None) -> str:
    """Convert dialect inline markup to fpdf2's markdown; footnote refs become superscripts."""
    out: list[str] = []
    pos = 0
    for match in INLINE_RE.finditer(text):
        out.append(_escape(text[pos : match.start()]))
        pos = match.end()
        if match.group("bold") is not None:
            inner = re.sub(r"(?<!\*)\*(?!\*)", "", match.group("bold"))
            out.append("**" + _escape(_strip_refs(inner, refs)) + "**")
        elif match.group("ital") is not None:
            out.append("__" + _escape(_strip_refs(match.group("ital"), refs)) + "__")
        elif match.group("fn") is not None:
            out.append(_footnote_mark(match.group("fn"), refs))
        elif match.group("label") is not None:
            out.append(_escape(match.group("label")))
        else:
            out.append(_escape(match.group("code")))
    out.append(_escape(text[pos:]))
    return "".join(out)


def _strip_refs(text: str, refs: list[str] | None) -> str:
    return re.sub(r"\[\^([^\]]+)\]", lambda m: _footnote_mark(m.group(1), refs), text)


def _footnote_mark(label: str, refs: list[str] | None) -> str:
    if refs is not None and label not in refs:
        refs.append(label)
    return label.translate(SUPERSCRIPT) if label.isdigit() else f"[{label}]"


def plain_text(text: str) -> str:
    """Inline markup removed (for titles, headers and PDF metadata)."""
    text = re.sub(r"\[\^[^\]]+\]", "", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    return re.sub(r"\*\*|(?<![\w*])\*|\*(?![\w*])|`", "", text).strip()


# ------------------------------------------------------------------------ rendering


class CorpusPDF(FPDF):
    """An A4 document with the corpus look: running header, footer, optional two columns."""

    def __init__(self, layout: str, header_text: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.layout = layout
        self.header_text = header_text
        self.ncols = 2 if layout == "two-columns" else 1
        self.col = 0
        self.indent = 0.0
        self.measuring = False
        self.col_top = MARGIN
        self.full_width = self.w - 2 * MARGIN
        self.col_width = (self.full_width - COL_GAP * (self.ncols - 1)) / self.ncols
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=MARGIN)
        for style, name in FONT_FILES.items():
            self.add_font(FONT, style, str(FONT_DIR / name))

    # -- page furniture
    def header(self) -> None:
        self.col_top = MARGIN
        if self.layout == "plain" or self.page == 1:
            return
        self.set_font(FONT, "I", 8.5)
        self.set_text_color(110, 110, 110)
        self.set_xy(MARGIN, 11)
        self.cell(self.full_width, 5, self.header_text, align="R")
        self.set_draw_color(190, 190, 190)
        self.line(MARGIN, 17, self.w - MARGIN, 17)
        self.set_text_color(0, 0, 0)
        self.set_draw_color(0, 0, 0)
        self.set_xy(self.l_margin, MARGIN)

    def footer(self) -> None:
        if self.layout == "plain":
            return
        self.set_font(FONT, "", 8.5)
        self.set_text_color(110, 110, 110)
        self.set_xy(MARGIN, self.h - 14)
        text = FOOTER.format(page=self.page_no(), nb=self.alias_nb_pages_value())
        self.cell(self.full_width, 5, text, align="C")
        self.set_text_color(0, 0, 0)

    def alias_nb_pages_value(self) -> str:
        """The placeholder fpdf2 replaces with the total page count."""
        return self.str_alias_nb_pages

    # -- columns
    def set_col(self, col: int) -> None:
        """Move the margins to column ``col`` (the current indent is kept)."""
        self.col = col
        left = MARGIN + col * (self.col_width + COL_GAP)
        self.set_left_margin(left + self.indent)
        self.set_right_margin(self.w - left - self.col_width)
        self.set_x(left + self.indent)

    @property
    def accept_page_break(self) -> bool:
        """fpdf2 asks this at each overflow: move to the next column before adding a page."""
        if self.measuring:
            return False
        if self.ncols > 1 and self.col < self.ncols - 1:
            self.set_col(self.col + 1)
            self.set_y(self.col_top)
            return False
        self.set_col(0)
        return True

    def next_area(self) -> None:
        """Continue in the next column, or on a new page."""
        if self.accept_page_break:
            self.add_page()
            self.set_col(0)

    def new_page(self) -> None:
        self.add_page()
        self.set_col(0)

    def ensure_room(self, height: float) -> None:
        if self.y + height > self.page_break_trigger:
            self.next_area()

    def line_block(self, width: float, height: float, text: str) -> None:
        """Plain left-aligned text; the cursor ends at the left margin of the next line."""
        self.multi_cell(width, height, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def measure(self, width: float, height: float, markdown: str) -> float:
        """Height that ``multi_cell`` would take for this text, without drawing it."""
        self.measuring = True  # a dry run must not switch columns (see accept_page_break)
        try:
            result = self.multi_cell(
                width,
                height,
                markdown,
                markdown=True,
                dry_run=True,
                output=MethodReturnValue.HEIGHT,
            )
        finally:
            self.measuring = False
        assert isinstance(result, float | int)
        return float(result)

    def set_indent(self, indent: float) -> None:
        self.indent = indent
        self.set_col(self.col)

    @property
    def width_here(self) -> float:
        return self.col_width - self.indent


@dataclass
class Renderer:
    """Walks the blocks of one source and draws them on a :class:`CorpusPDF`."""

    pdf: CorpusPDF
    footnotes: dict[str, str]
    pending: list[str] = field(default_factory=list)
    printed: set[str] = field(default_factory=set)

    def text(self, markdown: str, size: float = BODY_SIZE, style: str = "") -> None:
        pdf = self.pdf
        pdf.set_font(FONT, style, size)
        pdf.multi_cell(
            pdf.width_here,
            LINE * size / BODY_SIZE,
            markdown,
            markdown=True,
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )

    def inline(self, text: str) -> str:
        return to_fpdf_markdown(text, self.pending)

    def title_block(self, meta: dict[str, str], fallback: str) -> None:
        pdf = self.pdf
        pdf.set_y(MARGIN + 4)
        pdf.set_font(FONT, "B", 21)
        pdf.line_block(pdf.full_width, 9.5, meta.get("title", fallback))
        if meta.get("subtitle"):
            pdf.ln(1.5)
            pdf.set_font(FONT, "", 13.5)
            pdf.set_text_color(70, 70, 70)
            pdf.line_block(pdf.full_width, 7, meta["subtitle"])
            pdf.set_text_color(0, 0, 0)
        pdf.ln(3)
        pdf.set_font(FONT, "", 10)
        for line in (meta.get("author"), meta.get("date")):
            if line:
                pdf.line_block(pdf.full_width, 5.5, line)
        pdf.ln(3)
        pdf.set_draw_color(150, 150, 150)
        pdf.line(MARGIN, pdf.y, pdf.w - MARGIN, pdf.y)
        pdf.set_draw_color(0, 0, 0)
        pdf.ln(6)
        pdf.col_top = pdf.y
        pdf.set_col(0)
        pdf.set_y(pdf.col_top)

    def heading(self, block: Block) -> None:
        pdf = self.pdf
        if block.level <= 2:
            self.flush_footnotes()
        size = HEADING_SIZES[block.level]
        pdf.set_font(FONT, "B", size)
        md = self.inline(block.text)
        height = pdf.measure(pdf.width_here, LINE * size / BODY_SIZE, md)
        space_before = {1: 6.0, 2: 4.5, 3: 3.0}[block.level]
        if pdf.y > pdf.col_top + 1:
            pdf.ln(space_before)
        pdf.ensure_room(float(height) + 3 * LINE)  # keep the heading with its next lines
        self.text(md, size=size, style="B")
        pdf.ln(1.5)

    def paragraph(self, text: str) -> None:
        self.text(self.inline(text))
        self.pdf.ln(2.2)

    def item(self, block: Block) -> None:
        pdf = self.pdf
        hang = 7.0 if block.kind == "number" else 5.0
        base = 4.0 + 6.0 * block.level
        pdf.ensure_room(LINE)
        pdf.set_indent(base)
        pdf.set_font(FONT, "B" if block.kind == "number" else "", BODY_SIZE)
        y = pdf.y
        pdf.cell(hang, LINE, block.marker)
        pdf.set_xy(pdf.l_margin + hang, y)
        pdf.set_indent(base + hang)
        self.text(self.inline(block.text))
        pdf.set_indent(0)
        pdf.ln(1.0)

    def note(self, text: str) -> None:
        pdf = self.pdf
        pad = 3.5
        size = BODY_SIZE - 1
        md = "\n".join(self.inline(p) for p in text.split("\n"))
        pdf.set_font(FONT, "", size)
        width = pdf.width_here - 2 * pad
        height = pdf.measure(width, LINE * 0.93, md)
        pdf.ln(1.5)
        pdf.ensure_room(min(height + 2 * pad, 60))
        x, y = pdf.l_margin, pdf.y
        if y + height + 2 * pad <= pdf.page_break_trigger:
            pdf.set_fill_color(*NOTE_FILL)
            pdf.set_draw_color(120, 140, 170)
            pdf.rect(x, y, pdf.width_here, height + 2 * pad, style="DF")
            pdf.set_draw_color(0, 0, 0)
        pdf.set_xy(x + pad, y + pad)
        pdf.set_indent(pad)
        pdf.set_right_margin(pdf.r_margin + pad)
        pdf.multi_cell(
            width,
            LINE * 0.93,
            md,
            markdown=True,
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.set_indent(0)
        pdf.ln(pad + 3)

    def table(self, rows: list[list[str]]) -> None:
        """A bordered table drawn row by row, so it can break across columns and pages."""
        pdf = self.pdf
        if not rows:
            return
        ncols = max(len(r) for r in rows)
        rows = [r + [""] * (ncols - len(r)) for r in rows]
        size = BODY_SIZE - 1.5 if pdf.ncols == 1 else BODY_SIZE - 2.5
        widths = self.column_widths(rows, size, pdf.width_here)
        cells = [[self.inline(cell) for cell in row] for row in rows]
        pdf.ln(1)
        pdf.ensure_room(3 * LINE)
        for index, row in enumerate(cells):
            style = "B" if index == 0 else ""
            height = self.row_height(row, widths, size, style)
            if pdf.y + height > pdf.page_break_trigger:
                pdf.next_area()
                if index > 0:  # repeat the heading row
                    self.draw_row(
                        cells[0], widths, size, "B", self.row_height(cells[0], widths, size, "B")
                    )
            self.draw_row(row, widths, size, style, height)
        pdf.set_x(pdf.l_margin)
        pdf.ln(3)

    def row_height(self, row: list[str], widths: list[float], size: float, style: str) -> float:
        pdf = self.pdf
        pdf.set_font(FONT, style, size)
        heights = [
            pdf.measure(w - 2 * CELL_PAD, LINE * size / BODY_SIZE, text)
            for text, w in zip(row, widths, strict=True)
        ]
        return max(heights) + 2 * CELL_PAD

    def draw_row(
        self, row: list[str], widths: list[float], size: float, style: str, height: float
    ) -> None:
        pdf = self.pdf
        x, y = pdf.l_margin, pdf.y
        pdf.set_font(FONT, style, size)
        pdf.set_draw_color(90, 90, 90)
        pdf.set_fill_color(*HEAD_FILL)
        for text, w in zip(row, widths, strict=True):
            pdf.rect(x, y, w, height, style="DF" if style else "D")
            pdf.set_xy(x + CELL_PAD, y + CELL_PAD)
            pdf.multi_cell(
                w - 2 * CELL_PAD, LINE * size / BODY_SIZE, text, markdown=True, align="L"
            )
            x += w
        pdf.set_draw_color(0, 0, 0)
        pdf.set_xy(pdf.l_margin, y + height)

    def column_widths(self, rows: list[list[str]], size: float, total: float) -> list[float]:
        """Widths that never split a word when possible, the rest shared by content length."""
        pdf = self.pdf
        pdf.set_font(FONT, "B", size)
        extra = 2 * CELL_PAD + 2 * pdf.c_margin + 0.5
        ncols = len(rows[0])
        minimum, desired = [], []
        for c in range(ncols):
            texts = [plain_text(r[c]) for r in rows]
            words = [w for t in texts for w in t.split()] or [""]
            minimum.append(max(pdf.get_string_width(w) for w in words) + extra)
            desired.append(max(max(pdf.get_string_width(t) for t in texts) + extra, minimum[-1]))
        if sum(desired) <= total:
            return [d * total / sum(desired) for d in desired]
        if sum(minimum) >= total:
            return [m * total / sum(minimum) for m in minimum]
        spare = total - sum(minimum)
        wants = [d - m for d, m in zip(desired, minimum, strict=True)]
        return [m + spare * w / sum(wants) for m, w in zip(minimum, wants, strict=True)]

    def flush_footnotes(self) -> None:
        labels = [label for label in self.pending if label not in self.printed]
        self.pending.clear()
        if not labels:
            return
        pdf = self.pdf
        pdf.ln(1.5)
        pdf.ensure_room(2 * LINE)
        pdf.set_draw_color(150, 150, 150)
        pdf.line(pdf.l_margin, pdf.y, pdf.l_margin + 40, pdf.y)
        pdf.set_draw_color(0, 0, 0)
        pdf.ln(1.5)
        for label in labels:
            self.printed.add(label)
            body = self.footnotes.get(label, "(note manquante)")
            mark = label.translate(SUPERSCRIPT) if label.isdigit() else f"[{label}]"
            md = mark + " " + to_fpdf_markdown(body)
            self.text(md, size=BODY_SIZE - 2)
            pdf.ln(0.8)
        pdf.ln(2)

    def render(self, source: Source, slug: str) -> None:
        self.title_block(source.meta, slug)
        for block in source.blocks:
            if block.kind == "heading":
                self.heading(block)
            elif block.kind == "para":
                self.paragraph(block.text)
            elif block.kind in ("bullet", "number"):
                self.item(block)
            elif block.kind == "note":
                self.note(block.text)
            elif block.kind == "table":
                self.table(block.rows)
            elif block.kind == "pagebreak":
                self.flush_footnotes()
                self.pdf.new_page()
            elif block.kind == "rule":
                pdf = self.pdf
                pdf.ln(2)
                pdf.line(pdf.l_margin, pdf.y, pdf.l_margin + pdf.width_here, pdf.y)
                pdf.ln(3)
        self.flush_footnotes()


def creation_date(value: str) -> datetime:
    """The front matter date as a UTC datetime (a fixed default when absent or not ISO)."""
    match = re.match(r"(\d{4})-(\d{2})(?:-(\d{2}))?", value.strip())
    if not match:
        return DEFAULT_DATE
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
    return datetime(year, month, day, 12, 0, 0, tzinfo=UTC)


def source_stamp(text: str) -> str:
    """PDF /Keywords value tying a PDF to its source text and to this builder's version.

    Tests compare it with the source instead of re-rendering bytes, which would depend on the
    exact fpdf2 and DejaVu versions installed."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"alliance-build:{BUILD_VERSION} source-sha256:{digest}"


def render_pdf(text: str, slug: str) -> bytes:
    """Render one Markdown source (the dialect above) to PDF bytes, deterministically."""
    check_fonts()
    source = parse_source(text)
    meta = source.meta
    layout = meta.get("layout", "report") or "report"
    if layout not in LAYOUTS:
        raise ValueError(f"{slug}: layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    title = plain_text(meta.get("title", slug))
    meta["title"] = title
    pdf = CorpusPDF(layout, plain_text(meta.get("header") or title))
    pdf.set_title(title)
    if meta.get("author"):
        pdf.set_author(plain_text(meta["author"]))
    if meta.get("subtitle"):
        pdf.set_subject(plain_text(meta["subtitle"]))
    pdf.set_keywords(source_stamp(text))
    pdf.set_lang("fr-FR")
    pdf.set_creator(PRODUCER)
    pdf.set_producer(PRODUCER)
    pdf.set_creation_date(creation_date(meta.get("date", "")))
    pdf.add_page()
    pdf.set_col(0)
    Renderer(pdf, source.footnotes).render(source, slug)
    return bytes(pdf.output())


def check_fonts() -> None:
    """Fail with an actionable message when the DejaVu fonts are not installed."""
    missing = [name for name in FONT_FILES.values() if not (FONT_DIR / name).is_file()]
    if missing:
        raise SystemExit(
            f"DejaVu fonts missing in {FONT_DIR} ({', '.join(missing)}): "
            "install the Debian package fonts-dejavu-core (apt-get install fonts-dejavu-core)."
        )


def pdf_stats(data: bytes) -> tuple[int, int]:
    """(pages, words) of a PDF, as pypdf extracts it."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    words = sum(len((page.extract_text() or "").split()) for page in reader.pages)
    return len(reader.pages), words


def output_path(src: Path, src_root: Path, out_root: Path) -> Path:
    return out_root / src.relative_to(src_root).with_suffix(".pdf")


KINDS = {"recits": "recit", "charte": "charte", "boite-a-outils": "boite-a-outils"}
DOC_SUFFIXES = {".pdf": "PDF", ".html": "HTML", ".htm": "HTML", ".md": "Markdown", ".txt": "texte"}


def document_title(path: Path) -> str:
    """Title of a corpus document: PDF metadata, HTML <title>, or first Markdown heading."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader

        meta = PdfReader(str(path)).metadata
        return str(meta.title) if meta and meta.title else path.stem
    text = path.read_text(encoding="utf-8", errors="replace")
    if suffix in (".html", ".htm"):
        match = re.search(r"(?is)<title>(.*?)</title>", text)
        title = match.group(1) if match else path.stem
        title = " ".join(title.split()).split(" | ")[0].rsplit(" — ", 1)[0]
        return html.unescape(title)
    _, body = parse_front_matter(text)
    match = re.search(r"(?m)^#\s+(.+)$", body)
    return plain_text(match.group(1)) if match else path.stem


def documents_table(corpus: Path) -> str:
    """Markdown table of the indexable documents (for corpus/README.md)."""
    lines = ["| Document | Titre | Type | Format | Pages |", "|---|---|---|---|---|"]
    for path in sorted(corpus.rglob("*")):
        rel = path.relative_to(corpus)
        if (
            not path.is_file()
            or path.suffix.lower() not in DOC_SUFFIXES
            or any(part.startswith(("_", ".")) for part in rel.parts)
            or path.stem.upper() == "README"
        ):
            continue
        kind = KINDS.get(rel.parts[0], "autre") if len(rel.parts) > 1 else "autre"
        fmt = DOC_SUFFIXES[path.suffix.lower()]
        pages = str(pdf_stats(path.read_bytes())[0]) if fmt == "PDF" else "—"
        title = document_title(path).replace("|", "\\|")
        lines.append(f"| `{rel}` | {title} | {kind} | {fmt} | {pages} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="render only this slug (file stem or relative path)")
    parser.add_argument("--src", type=Path, default=ROOT / "corpus" / "_src")
    parser.add_argument("--out", type=Path, default=ROOT / "corpus")
    parser.add_argument(
        "--docs-table", action="store_true", help="print a Markdown table of --out's documents"
    )
    args = parser.parse_args(argv)
    if args.docs_table:
        print(documents_table(args.out))
        return 0
    check_fonts()
    sources = sorted(args.src.rglob("*.md"))
    if args.only:
        wanted = args.only.removesuffix(".md").removesuffix(".pdf")
        sources = [
            s
            for s in sources
            if s.stem == wanted or str(s.relative_to(args.src).with_suffix("")) == wanted
        ]
        if not sources:
            print(f"no source matches {args.only!r} under {args.src}", file=sys.stderr)
            return 1
    failures = 0
    rows: list[tuple[str, int, int]] = []
    for src in sources:
        rel = src.relative_to(args.src)
        try:
            data = render_pdf(src.read_text(encoding="utf-8"), src.stem)
        except Exception as exc:  # a tools script: report the bad source and carry on
            print(f"FAILED {rel}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failures += 1
            continue
        out = output_path(src, args.src, args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() or out.read_bytes() != data:
            out.write_bytes(data)
        pages, words = pdf_stats(data)
        rows.append((str(out.relative_to(args.out)), pages, words))
    width = max([len(r[0]) for r in rows] + [4])
    print(f"{'file':<{width}}  pages  words")
    for name, pages, words in rows:
        flag = "  (< 6 pages)" if pages < 6 else ""
        print(f"{name:<{width}}  {pages:>5}  {words:>5}{flag}")
    print(f"{'TOTAL':<{width}}  {sum(r[1] for r in rows):>5}  {sum(r[2] for r in rows):>5}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
