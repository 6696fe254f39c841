"""Markdown and plain-text files to text: UTF-8 (or windows-1252), no YAML front matter.

``read_text_file(data, source, markdown=True)`` returns ``(title, text)``; the title is the first
``# `` heading, else a ``title:`` in the front matter, else None (the caller uses the file stem).
"""

from __future__ import annotations

import re

from assistant.errors import DocumentError
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
