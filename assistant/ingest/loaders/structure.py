"""A document's structure: blocks (heading, paragraph, list, table), each under its heading path.

Loaders turn what they read into blocks so that chunking keeps a list with its lead-in and every
chunk knows its section. ``blocks_from_text`` reads structure back from plain lines (PDF pages,
text files): numbered headings (« 3. », « 3.1 », « III. », « Article 3 – », « Chapitre 2 »), short
title lines, bullet and numbered list items (with their wrapped lines), and the sentence ending
in « : » that introduces a list. Markdown and HTML loaders build blocks from their own syntax.

    blocks = blocks_from_text("Par où commencer\\nTrois étapes :\\n1. Diagnostic ;\\n2. Plan.")
    # [Block(kind="list", lead_in="Trois étapes :", items=["1. Diagnostic ;", "2. Plan."],
    #        path=("Par où commencer",))]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from assistant.text.structure import (
    BULLET_ITEM,
    LETTERED_ITEM,
    LIST_ITEM,
    NUMBERED_ITEM,
    TABLE_ROW,
)

BlockKind = Literal["heading", "paragraph", "list", "table"]


@dataclass(frozen=True)
class Block:
    """One unit of a document's structure, under the headings that enclose it (``path``)."""

    kind: BlockKind
    text: str = ""  # heading or paragraph text
    items: tuple[str, ...] = ()  # list items, each with its marker (« 1. », « - »)
    lead_in: str = ""  # the sentence that announces a list (« … les suivants : »)
    rows: tuple[tuple[str, ...], ...] = ()  # table rows, the first one is the header
    level: int = 0  # heading level (1 = top)
    path: tuple[str, ...] = ()  # enclosing headings, outermost first
    page: int | None = None

    def render(self) -> str:
        """The block as indexed and quoted: lines, list items one per line."""
        if self.kind == "list":
            lines = [self.lead_in] if self.lead_in else []
            return "\n".join([*lines, *self.items])
        if self.kind == "table":
            return "\n".join("| " + " | ".join(row) + " |" for row in self.rows)
        return self.text


@dataclass
class _Outline:
    """The heading path while reading a document: a new heading replaces those at its level
    and below."""

    stack: list[tuple[int, str]] = field(default_factory=list)

    def enter(self, level: int, title: str) -> None:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, title))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.stack)


class BlockBuilder:
    """Collects blocks in reading order, tracking the heading path and joining a paragraph that
    ends in « : » to the list that follows it (its lead-in)."""

    def __init__(self, path: Iterable[tuple[int, str]] = ()) -> None:
        self.outline = _Outline(list(path))
        self.blocks: list[Block] = []

    @property
    def state(self) -> list[tuple[int, str]]:
        return list(self.outline.stack)

    def heading(self, title: str, level: int, page: int | None = None) -> None:
        title = " ".join(title.split())
        if not title:
            return
        self.outline.enter(level, title)
        self.blocks.append(Block("heading", title, level=level, path=self.outline.path, page=page))

    def paragraph(self, text: str, page: int | None = None) -> None:
        text = " ".join(text.split())
        if text:
            self.blocks.append(Block("paragraph", text, path=self.outline.path, page=page))

    def list(self, items: Iterable[str], page: int | None = None, ordered: bool = False) -> None:
        marked: list[str] = []
        for n, item in enumerate(items, start=1):
            item = " ".join(item.split())
            if not item:
                continue
            if not LIST_ITEM.match(item):
                item = f"{n}. {item}" if ordered else f"- {item}"
            marked.append(item)
        if not marked:
            return
        lead_in = ""
        last = self.blocks[-1] if self.blocks else None
        if (
            last is not None
            and last.kind == "paragraph"
            and last.path == self.outline.path
            and last.text.rstrip().endswith(":")
        ):
            self.blocks.pop()
            lead_in = last.text
        self.blocks.append(
            Block("list", items=tuple(marked), lead_in=lead_in, path=self.outline.path, page=page)
        )

    def table(self, rows: Iterable[Iterable[str]], page: int | None = None) -> None:
        kept = tuple(r for r in (tuple(" ".join(c.split()) for c in row) for row in rows) if any(r))
        if kept:
            self.blocks.append(Block("table", rows=kept, path=self.outline.path, page=page))


# -- reading structure back from lines ---------------------------------------------------------

# list items and table rows: ``text.structure`` (the answerer reads them the same way)
# « 3.1 Titre », « III. Titre », « Article 3 – Titre », « Chapitre 2 : Titre », « Annexe A »
_NUMBERED_HEADING = re.compile(
    r"^(?:(?P<word>(?i:article|chapitre|titre|partie|section|annexe))\s+(?:\d+|[IVXLC]+|[A-Z])\b"
    r"|(?P<roman>[IVXLC]{1,6})[.)]\s|(?P<dotted>\d{1,2}(?:\.\d{1,2})+)\.?\s)"
)
_SENTENCE_END = (".", "!", "?", "…", ";", ":", ",")
_JOINERS = frozenset(
    [
        "le",
        "la",
        "les",
        "l",
        "de",
        "du",
        "des",
        "d",
        "un",
        "une",
        "et",
        "ou",
        "à",
        "au",
        "aux",
        "en",
        "par",
        "pour",
        "sur",
        "dans",
        "avec",
        "que",
        "qui",
        "sans",
        "entre",
        "selon",
        "chez",
        "vers",
        "son",
        "sa",
        "ses",
        "leur",
        "leurs",
        "ce",
        "cette",
        "ces",
        "the",
        "of",
        "and",
    ]
)
MAX_HEADING_WORDS = 14


def _ends_sentence(text: str) -> bool:
    t = text.rstrip()
    return t.endswith(_SENTENCE_END) or bool(re.search(r"[.!?…][»)\"]$", t))


def _title_like(line: str) -> bool:
    """Short, capitalised, no closing punctuation, not ending on a joining word."""
    t = line.strip()
    if not t or len(t) > 100 or len(t.split()) > MAX_HEADING_WORDS:
        return False
    if not (t[0].isupper() or t[0].isdigit() or t[0] in '«"'):
        return False
    if sum(c.isalpha() for c in t) < 3:
        return False
    if _ends_sentence(t) and not t.endswith("?"):
        return False
    last = t.rsplit(maxsplit=1)[-1].lower().rstrip("'’")
    return last not in _JOINERS


def numbered_heading_level(line: str) -> int | None:
    """The level of a numbered heading (« III. » 1, « 3.1 » 2, « Article 3 » 2), else None."""
    m = _NUMBERED_HEADING.match(line.strip())
    if m is None or (not _title_like(line) and not line.rstrip().endswith((":", "–", "-"))):
        return None
    if m.group("roman"):
        return 1
    if m.group("dotted"):
        return min(4, m.group("dotted").count(".") + 1)
    word = m.group("word").lower()
    return 1 if word in {"chapitre", "titre", "partie", "annexe"} else 2


def blocks_from_text(
    text: str,
    page: int | None = None,
    builder: BlockBuilder | None = None,
    heading_levels: Mapping[str, int] | None = None,
) -> list[Block]:
    """Blocks of plain text whose paragraphs are separated by blank lines (see module doc).

    ``heading_levels`` maps headings known from elsewhere (a PDF's larger or bold lines, keyed
    by ``heading_key``) to their level. Pass the same ``builder`` for every page of a document
    so the heading path runs on across pages; the blocks of this call are returned.
    """
    builder = builder or BlockBuilder()
    start = len(builder.blocks)
    known = heading_levels or {}
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    for para in paragraphs:
        _read_paragraph([ln.strip() for ln in para.split("\n") if ln.strip()], page, builder, known)
    return builder.blocks[start:]


def heading_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _heading_level(lines: list[str], i: int, known: Mapping[str, int], in_list: bool) -> int | None:
    line = lines[i]
    key = heading_key(line)
    if key and key in known:
        return known[key]
    level = numbered_heading_level(line)
    if level is not None:
        return level
    if in_list or known:  # with font information, an unmarked short line is not a heading
        return None
    # A short title line opening its paragraph, followed by a new sentence or nothing.
    if i != 0 or not _title_like(line) or NUMBERED_ITEM.match(line) or BULLET_ITEM.match(line):
        return None
    nxt = lines[1] if len(lines) > 1 else ""
    if not nxt:
        return 3
    return 3 if (nxt[0].isupper() or nxt[0] in '«"' or LIST_ITEM.match(nxt)) else None


def _read_paragraph(
    lines: list[str], page: int | None, builder: BlockBuilder, known: Mapping[str, int]
) -> None:
    prose: list[str] = []
    items: list[str] = []
    numbers: list[int | None] = []

    def flush_prose() -> None:
        if prose:
            builder.paragraph(" ".join(prose), page)
            prose.clear()

    def flush_list() -> None:
        if not items:
            return
        # a lone numbered "item" that is short and unpunctuated is a section title
        if len(items) == 1 and numbers[0] is not None and _title_like(items[0]):
            builder.heading(items[0], 2, page)
        else:
            builder.list(list(items), page)
        items.clear()
        numbers.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if TABLE_ROW.match(line):  # a table read back from « | a | b | » rows (PDF tables)
            flush_prose()
            flush_list()
            rows: list[list[str]] = []
            while i < len(lines) and TABLE_ROW.match(lines[i]):
                rows.append([c.strip() for c in lines[i].strip()[1:-1].split(" | ")])
                i += 1
            builder.table(rows, page)
            continue
        level = _heading_level(lines, i, known, bool(items))
        if level is not None and not (items and _continues_item(items[-1], line)):
            flush_prose()
            flush_list()
            builder.heading(line, level, page)
            i += 1
            continue
        number = NUMBERED_ITEM.match(line) or LETTERED_ITEM.match(line)
        bullet = BULLET_ITEM.match(line)
        if number and not items and prose and not _ends_sentence(prose[-1]):
            n = int(number.group(1)) if number.group(1).isdigit() else None
            if n not in (None, 1):  # « … soutenus par le Fonds ODD » / « 17. Elles … »: a wrap
                prose.append(line)
                i += 1
                continue
        if number or bullet:
            flush_prose()
            items.append(line)
            numbers.append(int(number.group(1)) if number and number.group(1).isdigit() else None)
        elif items and _continues_item(items[-1], line):
            items[-1] = f"{items[-1]} {line}"
        else:
            flush_list()
            if prose and _title_like(prose[-1]) and len(prose) == 1 and line[:1].isupper():
                pass  # handled by _heading_level when it applies; keep the wrap otherwise
            prose.append(line)
        i += 1
    flush_prose()
    flush_list()


def _continues_item(item: str, line: str) -> bool:
    """A wrapped line of a list item: it starts in lower case, or the item is long and has not
    ended its sentence (PDF lines wrap inside items)."""
    if LIST_ITEM.match(line):
        return False
    if line[:1].islower():
        return True
    return len(item) > 60 and not _ends_sentence(item)


def join_items(items: Iterable[str]) -> str:
    """Nested list items as one clause: « a ; b. » (their own « ; » not doubled)."""
    kept = [i.strip() for i in items if i.strip()]
    body = [i.rstrip(" ;,") for i in kept[:-1]] + kept[-1:]
    return " ; ".join(body)


def with_page(blocks: Iterable[Block], page: int | None) -> list[Block]:
    return [replace(b, page=page) for b in blocks]


def render_blocks(blocks: Iterable[Block]) -> str:
    """Blocks as text, a blank line between blocks."""
    return "\n\n".join(b.render() for b in blocks if b.render())
