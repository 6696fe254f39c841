"""Split loaded documents into chunks that never span two PDF pages, with stable ids.

``split_blocks`` (used when a loader gives the document's structure) makes chunks of whole
blocks of one section: a chunk starts with its section's heading, a list stays with its lead-in
when it fits (a longer list is cut between items, the lead-in repeated), and no chunk is a heading
alone. Every chunk carries ``section`` (the heading path, « A > B ») and ``section_id``, so the
answerer can read the whole section around a retrieved chunk (retrieve small, read big).

Inside a block too long for one chunk, and in ``split_pages`` (plain pages), French prose is split
on paragraphs first, then lines (list items), then sentence ends, then clause punctuation, so a
chunk rarely cuts a sentence in half.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from itertools import groupby

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.ingest.loaders.structure import Block

SECTION_SEPARATOR = " > "

CHUNKER_VERSION = 3
"""Bump when this module (or a loader's text extraction) would cut other passages from the
same file: the index is then rebuilt aside at the next refresh (see ``indexing.build``).
1: flat pages cut by size; 2: whole blocks of one section (``split_blocks``); 3: PDF tables read
as tables (header and rows), not as headings and lines."""

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


def _merge_tiny(pieces: list[str], min_chars: int, sep: str = "\n") -> list[str]:
    """Glue fragments shorter than ``min_chars`` (a lone heading, a page's last words) to a
    neighbour so no chunk is too small to mean anything on its own."""
    out: list[str] = []
    carry = ""
    for piece in pieces:
        if not piece:
            continue
        if carry:
            piece = f"{carry}{sep}{piece}"
            carry = ""
        if len(piece) < min_chars:
            carry = piece
            continue
        out.append(piece)
    if carry:
        if out:
            out[-1] = f"{out[-1]}{sep}{carry}"
        else:
            out.append(carry)
    return out


def section_id(source: str, path: Sequence[str]) -> str:
    """The id of a document's section: the same headings in the same document, the same id."""
    key = f"{source}\x1f" + "\x1f".join(path)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def split_blocks(
    pages: Sequence[Document],
    blocks: Sequence[Block],
    chunk_size: int,
    chunk_overlap: int,
    min_chars: int = 40,
) -> list[Document]:
    """Chunks of whole blocks, section by section (see module doc). ``pages`` give the metadata
    (by ``page`` number for PDFs; a single page otherwise)."""
    by_page = {p.metadata.get("page"): p.metadata for p in pages}
    default = pages[0].metadata if pages else {}
    splitter = make_splitter(chunk_size, chunk_overlap)
    chunks: list[Document] = []
    seen: set[str] = set()
    body = [b for b in blocks if b.kind != "heading"]
    for (path, page), group in groupby(body, key=lambda b: (b.path, b.page)):
        meta_base = dict(by_page.get(page, default))
        if page is None:
            meta_base.pop("page", None)
        heading = path[-1] if path else ""
        budget = max(chunk_size - len(heading) - 2, chunk_size // 2)
        pieces = _pack([p for b in group for p in _pieces(b, budget, splitter)], budget)
        pieces = _merge_tiny(pieces, min_chars, sep="\n\n")
        source = str(meta_base.get("source", ""))
        for piece in pieces:
            text = f"{heading}\n\n{piece}" if heading and piece != heading else piece
            cid = chunk_id(source, meta_base.get("page"), text, str(meta_base.get("title", "")))
            if cid in seen:
                continue
            seen.add(cid)
            meta = dict(meta_base)
            meta["section"] = SECTION_SEPARATOR.join(path)
            meta["section_id"] = section_id(source, path)
            meta["chunk_id"] = cid
            meta["chunk_index"] = len(chunks)
            chunks.append(Document(page_content=text, metadata=meta, id=cid))
    return chunks


def _pieces(block: Block, budget: int, splitter: RecursiveCharacterTextSplitter) -> list[str]:
    """A block as one piece when it fits; else cut between list items or table rows (the lead-in
    or header repeated), or, for prose, by the French splitter."""
    text = block.render()
    if len(text) <= budget:
        return [text] if text.strip() else []
    if block.kind in ("list", "table"):
        head = block.lead_in if block.kind == "list" else "| " + " | ".join(block.rows[0]) + " |"
        lines = list(block.items) if block.kind == "list" else text.split("\n")[1:]
        out: list[str] = []
        current: list[str] = [head] if head else []
        for line in lines:
            if len("\n".join([*current, line])) > budget and len(current) > (1 if head else 0):
                out.append("\n".join(current))
                current = [head] if head and len(head) < budget // 2 else []
            current.append(line)
        if current:
            out.append("\n".join(current))
        return [p for piece in out for p in ([piece] if len(piece) <= budget * 1.5 else
                                             splitter.split_text(piece))]  # fmt: skip
    return [p.strip() for p in splitter.split_text(text) if p.strip()]


def _pack(pieces: list[str], budget: int) -> list[str]:
    """Consecutive pieces of a section joined while they fit in ``budget``."""
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) + 2 + len(piece) <= budget:
            out[-1] = f"{out[-1]}\n\n{piece}"
        else:
            out.append(piece)
    return out


def chunk_document(
    pages: Sequence[Document],
    blocks: Sequence[Block],
    chunk_size: int,
    chunk_overlap: int,
) -> list[Document]:
    """Chunks of a loaded document: by blocks when the loader read its structure, else by page."""
    if blocks:
        return split_blocks(pages, blocks, chunk_size, chunk_overlap)
    return split_pages(pages, chunk_size, chunk_overlap)
