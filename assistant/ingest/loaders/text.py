"""Markdown and plain-text files to text: UTF-8 (or windows-1252), no YAML front matter.

``read_text_file(data, source, markdown=True)`` returns ``(title, text)``; the title is the first
``# `` heading, else a ``title:`` in the front matter, else None (the caller uses the file stem).
"""

from __future__ import annotations

import re

from assistant.errors import DocumentError
from assistant.ingest.loaders.structure import Block, BlockBuilder, blocks_from_text, join_items
from assistant.text.cleaning import clean_text, strip_markdown

_FRONT_MATTER = re.compile(r"\A(?:---|\+\+\+)[ \t]*\n(.*?)\n(?:---|\.\.\.|\+\+\+)[ \t]*(?:\n|\Z)",
                           re.DOTALL)  # fmt: skip
_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FM_TITLE = re.compile(r"""^title\s*[:=]\s*["']?(.*?)["']?\s*$""", re.MULTILINE | re.IGNORECASE)


def decode_text(data: bytes) -> str:
    """UTF-8 (BOM allowed), else windows-1252, which never fails on French legacy files."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter body, rest): YAML ``---`` or TOML ``+++`` block at the very top."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return "", text
    return match.group(1), text[match.end() :]


def read_text_file(data: bytes, source: str, *, markdown: bool) -> tuple[str | None, str]:
    """Text and title of a Markdown (``markdown=True``) or plain-text file."""
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    front, body = split_front_matter(text) if markdown else ("", text)
    title: str | None = None
    if markdown:
        heading = _H1.search(body)
        fm_title = _FM_TITLE.search(front)
        if heading:
            title = strip_markdown(heading.group(1)).strip()
        elif fm_title and fm_title.group(1).strip():
            title = fm_title.group(1).strip()
        body = strip_markdown(body)
    cleaned = clean_text(body)
    if not cleaned:
        raise DocumentError(source, "texte vide")
    return (clean_text(title) or None) if title else None, cleaned


_MD_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_MD_ITEM = re.compile(r"^([ \t]*)(?:[-*+]|(\d{1,2})[.)])[ \t]+(.*)$")
_MD_TABLE_ROW = re.compile(r"^[ \t]*\|(.*)\|[ \t]*$")
_MD_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t:|-]*-{3,}[ \t:|-]*$")


def read_text_blocks(data: bytes, source: str, *, markdown: bool) -> list[Block]:
    """Blocks of a Markdown file (its own syntax: ``#`` headings, ``-``/``1.`` items, nested
    by indentation, ``|`` tables) or of a plain-text file (structure read from its lines)."""
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    if not markdown:
        return blocks_from_text(clean_text(text))
    _, body = split_front_matter(text)
    builder = BlockBuilder()
    para: list[str] = []
    items: list[tuple[int, str]] = []  # (indent, text)
    ordered = False
    rows: list[list[str]] = []

    def inline(line: str) -> str:
        return clean_text(strip_markdown(line)).replace("\n", " ")

    def flush() -> None:
        nonlocal ordered
        if para:
            builder.paragraph(inline(" ".join(para)))
            para.clear()
        if items:
            base = min(i for i, _ in items)
            top: list[str] = []
            subs: list[list[str]] = []
            for indent, item in items:
                if indent > base and top:
                    subs[-1].append(item)
                else:
                    top.append(item)
                    subs.append([])
            joined = []
            for item, sub in zip(top, subs, strict=True):
                if sub:
                    sep = " " if item.endswith(":") else " : "
                    item = f"{item}{sep}{join_items(sub)}"
                joined.append(inline(item))
            builder.list(joined, ordered=ordered)
            items.clear()
            ordered = False
        if rows:
            builder.table([[inline(c) for c in r] for r in rows])
            rows.clear()

    in_code = False
    for line in body.split("\n"):
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        heading = _MD_HEADING.match(line)
        item = _MD_ITEM.match(line)
        row = _MD_TABLE_ROW.match(line)
        if not line.strip():
            if para:
                flush()
            continue
        if heading and not in_code:
            flush()
            builder.heading(inline(heading.group(2)), len(heading.group(1)))
        elif row or (rows and _MD_TABLE_RULE.match(line)):
            if para or items:
                flush()
            if row and not _MD_TABLE_RULE.match(line):
                rows.append([c.strip() for c in row.group(1).split("|")])
        elif item and not in_code:
            if para or rows:
                if para and para[-1].rstrip().endswith(":"):
                    builder.paragraph(inline(" ".join(para)))
                    para.clear()
                flush()
            if not items:
                ordered = item.group(2) is not None
            number = f"{item.group(2)}. " if item.group(2) and len(item.group(1)) == 0 else ""
            items.append((len(item.group(1).expandtabs(4)), number + item.group(3)))
        elif items and line.startswith((" ", "\t")):
            indent, last = items[-1]
            items[-1] = (indent, f"{last} {line.strip()}")
        else:
            if items or rows:
                flush()
            para.append(line.strip().lstrip(">").strip())
    flush()
    return builder.blocks
