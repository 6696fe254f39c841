"""Split loaded documents into chunks that never span two PDF pages, with stable ids.

French prose is split on paragraphs first, then lines (list items), then sentence ends, then
clause punctuation, so a chunk rarely cuts a sentence in half.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

CHUNKER_VERSION = 1
"""Bump when this module (or a loader's text extraction) would cut other passages from the
same file: the index is then rebuilt at the next refresh (see ``indexing.build``)."""

FRENCH_SEPARATORS: list[str] = [
    "\n\n",
    "\n",
    ". ",
    "? ",
    "! ",
    " ; ",
    "; ",
    " : ",
    ", ",
    " ",
    "",
]


def chunk_id(source: str, page: int | None, text: str, title: str = "") -> str:
    """A stable id: the same text at the same place (and under the same title, which is part of
    what gets embedded) always gets the same id."""
    key = f"{source}\x1f{page or 0}\x1f{title}\x1f{text}"
    digest = hashlib.sha256(key.encode()).hexdigest()
    return digest[:32]


def make_splitter(chunk_size: int, chunk_overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=FRENCH_SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )


def split_pages(
    pages: Iterable[Document], chunk_size: int, chunk_overlap: int, min_chars: int = 40
) -> list[Document]:
    """Chunks of each page separately; every chunk carries the page's metadata plus
    ``chunk_id`` and ``chunk_index`` (position within its document)."""
    splitter = make_splitter(chunk_size, chunk_overlap)
    chunks: list[Document] = []
    seen: set[str] = set()
    for page in pages:
        pieces = [p.strip() for p in splitter.split_text(page.page_content)]
        pieces = _merge_tiny(pieces, min_chars)
        for piece in pieces:
            meta = dict(page.metadata)
            cid = chunk_id(
                str(meta.get("source", "")), meta.get("page"), piece, str(meta.get("title", ""))
            )
            if cid in seen:  # the same text twice on a page adds nothing
                continue
            seen.add(cid)
            meta["chunk_id"] = cid
            meta["chunk_index"] = len(chunks)
            chunks.append(Document(page_content=piece, metadata=meta, id=cid))
    return chunks


def _merge_tiny(pieces: list[str], min_chars: int) -> list[str]:
    """Glue fragments shorter than ``min_chars`` (a lone heading, a page's last words) to a
    neighbour so no chunk is too small to mean anything on its own."""
    out: list[str] = []
    carry = ""
    for piece in pieces:
        if not piece:
            continue
        if carry:
            piece = f"{carry}\n{piece}"
            carry = ""
        if len(piece) < min_chars:
            carry = piece
            continue
        out.append(piece)
    if carry:
        if out:
            out[-1] = f"{out[-1]}\n{carry}"
        else:
            out.append(carry)
    return out
