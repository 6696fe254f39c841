"""Corpus files to langchain ``Document``s: find them, load one, fail per document with a reason.

One registry (``FORMATS``) says which file types are supported and how each is read: adding a
type (say ``.docx``) is one module with a ``Loader`` function and one ``Format`` line here; the
corpus walk, the refresh, staff uploads, served files and web fetching all read the registry.

Usage::

    for path in discover(corpus_dir):
        try:
            loaded = load_document(path, corpus_dir, passwords=settings.pdf_passwords)
        except DocumentError as exc:
            report(exc.source, exc.reason)

Every Document carries ``source``, ``title``, ``kind``, ``sha256`` and, for PDFs, ``page``
(1-based). No metadata value is ever None (Chroma refuses them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from langchain_core.documents import Document

from assistant.errors import DocumentError, TooLargeError, UnsupportedTypeError
from assistant.ingest.budget import ReadBudget
from assistant.ingest.loaders.structure import Block
from assistant.ingest.loaders.text import read_text_blocks, read_text_file

__all__ = [
    "FORMATS",
    "SUPPORTED_SUFFIXES",
    "UPLOAD_LABELS",
    "UPLOAD_SUFFIXES",
    "Block",
    "Extracted",
    "Format",
    "LoadedDocument",
    "Loader",
    "discover",
    "format_for",
    "kind_for",
    "load_document",
]

logger = logging.getLogger(__name__)


@dataclass
class Extracted:
    """What a loader reads from a file's bytes: cleaned text per page (page number, or None
    for a file without pages), the title it found, and what staff should know."""

    title: str | None
    pages: list[tuple[int | None, str]]
    page_count: int | None = None  # total pages, with or without text (paged formats)
    warnings: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)  # structure (see loaders.structure)


class Loader(Protocol):
    """Reads one file type; raises ``DocumentError(source, reason)`` when it cannot, and stops
    (``DocumentError``, « trop coûteux à lire ») when reading exceeds ``budget``."""

    def __call__(
        self, data: bytes, source: str, passwords: Sequence[str], budget: ReadBudget | None
    ) -> Extracted: ...


@dataclass(frozen=True)
class Format:
    """One supported file type."""

    label: str  # how staff name it ("PDF")
    named: str  # how a sentence names one ("un PDF")
    suffixes: tuple[str, ...]  # the first one is what a fetched web page is saved as
    load: Loader
    media_type: str  # what it is served as (anything but a PDF is sandboxed)
    web_types: tuple[str, ...] = ()  # Content-Types of web pages read as this format
    sniff: Callable[[bytes], bool] | None = None  # set: staff may upload it, content checked


def _pdf(
    data: bytes, source: str, passwords: Sequence[str], budget: ReadBudget | None
) -> Extracted:
    from assistant.ingest.loaders.pdf import read_pdf  # pypdf loads with the first PDF

    pdf = read_pdf(data, source, passwords, budget)
    return Extracted(
        pdf.title, list(pdf.numbered), pdf.page_count, list(pdf.warnings), list(pdf.blocks)
    )


def _html(
    data: bytes, source: str, passwords: Sequence[str], budget: ReadBudget | None
) -> Extracted:
    from assistant.ingest.loaders.html import read_html_blocks  # trafilatura: the first page

    title, text, blocks = read_html_blocks(data, source)
    return Extracted(title, [(None, text)], blocks=blocks)


def _markdown(
    data: bytes, source: str, passwords: Sequence[str], budget: ReadBudget | None
) -> Extracted:
    title, text = read_text_file(data, source, markdown=True)
    return Extracted(title, [(None, text)], blocks=read_text_blocks(data, source, markdown=True))


def _plain(
    data: bytes, source: str, passwords: Sequence[str], budget: ReadBudget | None
) -> Extracted:
    title, text = read_text_file(data, source, markdown=False)
    return Extracted(title, [(None, text)], blocks=read_text_blocks(data, source, markdown=False))


_HTML_START = re.compile(rb"<\s*(!doctype\s+html|html|head|body|article|main|p|h1)\b", re.I)


def _looks_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(b"%PDF-")


def _looks_html(data: bytes) -> bool:
    return bool(_HTML_START.search(data[:4096]))


FORMATS: tuple[Format, ...] = (
    Format("PDF", "un PDF", (".pdf",), _pdf, "application/pdf", ("application/pdf",), _looks_pdf),
    Format(
        "HTML",
        "une page HTML",
        (".html", ".htm"),
        _html,
        "text/html",
        ("text/html", "application/xhtml+xml"),
        _looks_html,
    ),
    Format(
        "Markdown",
        "un fichier Markdown",
        (".md", ".markdown"),
        _markdown,
        "text/plain",
        ("text/markdown",),
    ),
    Format("texte", "un fichier texte", (".txt",), _plain, "text/plain", ("text/plain",)),
)
_BY_SUFFIX: dict[str, Format] = {s: f for f in FORMATS for s in f.suffixes}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_BY_SUFFIX)
UPLOAD_SUFFIXES: frozenset[str] = frozenset(s for s, f in _BY_SUFFIX.items() if f.sniff)
UPLOAD_LABELS: str = " ou ".join(f.label for f in FORMATS if f.sniff)  # "PDF ou HTML"


def format_for(suffix: str) -> Format | None:
    """The registered format of a suffix (".PDF" or ".pdf"), or None."""
    return _BY_SUFFIX.get(suffix.lower())


_KIND_BY_FOLDER = {
    "recits": "recit",
    "charte": "charte",
    "chartes": "charte",
    "boite-a-outils": "boite-a-outils",
    "boites-a-outils": "boite-a-outils",
    "outils": "boite-a-outils",
}


@dataclass
class LoadedDocument:
    """One corpus file, loaded: PDFs give one Document per page with text, others one."""

    source: str  # posix path relative to corpus_dir
    title: str
    kind: str
    sha256: str  # of the file bytes
    pages: list[Document]
    page_count: int | None  # PDF total pages (with or without text), else None
    warnings: list[str] = field(default_factory=list)
    # The document's structure (headings, paragraphs, lists, tables) in reading order; PDF
    # blocks carry their page. Chunking cuts between blocks (see assistant.ingest.chunking).
    blocks: list[Block] = field(default_factory=list)


def discover(corpus_dir: Path) -> list[Path]:
    """All supported files under ``corpus_dir``, sorted by relative posix path.

    Skips path parts starting with "." or "_" (``_src`` holds PDF sources), files named
    README*, and symlinks that resolve outside ``corpus_dir``. A symlinked folder is walked
    only if its target was not already reached through real folders (no duplicates, no loops).
    """
    root = Path(corpus_dir)
    real_root = root.resolve()
    found: dict[str, Path] = {}
    walked: set[Path] = set()
    links: list[Path] = []

    def walk(top: Path) -> None:
        for dirpath, dirnames, filenames in os.walk(top):
            current = Path(dirpath)
            walked.add(current.resolve())
            kept = []
            for name in sorted(dirnames):
                if name.startswith((".", "_")):
                    continue
                if (current / name).is_symlink():
                    links.append(current / name)
                else:
                    kept.append(name)
            dirnames[:] = kept
            for name in filenames:
                path = current / name
                if _wanted_file(path, real_root):
                    found[path.relative_to(root).as_posix()] = path

    walk(root)
    while links:
        link = links.pop(0)
        target = link.resolve()
        if target.is_dir() and target.is_relative_to(real_root) and target not in walked:
            walk(link)
    return [found[key] for key in sorted(found)]


def _wanted_file(path: Path, real_root: Path) -> bool:
    name = path.name
    return not (
        name.startswith((".", "_"))
        or name.upper().startswith("README")
        or path.suffix.lower() not in SUPPORTED_SUFFIXES
        or not path.is_file()
        or not path.resolve().is_relative_to(real_root)
    )


def kind_for(relative: PurePosixPath) -> str:
    """Document kind from the first folder: recits, charte(s), boite(s)-a-outils/outils."""
    parts = PurePosixPath(relative).parts
    if len(parts) < 2:
        return "autre"
    return _KIND_BY_FOLDER.get(parts[0].lower(), "autre")


def load_document(
    path: Path,
    corpus_dir: Path,
    *,
    passwords: Sequence[str] = (),
    max_bytes: int = 50 * 2**20,
    kind: str | None = None,
    title: str | None = None,
    budget: ReadBudget | None = None,
) -> LoadedDocument:
    """Load one file into cleaned Documents; raises ``DocumentError(source, reason)``."""
    relative = _relative(Path(path), Path(corpus_dir))
    source = relative.as_posix()
    suffix = relative.suffix.lower()
    fmt = format_for(suffix)
    if fmt is None:
        raise UnsupportedTypeError(
            source, f"type de fichier non pris en charge ({suffix or 'sans extension'})"
        )
    data = _read_bytes(Path(path), source, max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    kind = kind or kind_for(relative)

    got = fmt.load(data, source, passwords, budget)
    doc_title = title or got.title or prettify_stem(relative.stem)
    meta = {"source": source, "title": doc_title, "kind": kind, "sha256": sha256}
    pages = [
        Document(page_content=text, metadata={**meta, "page": n} if n is not None else dict(meta))
        for n, text in got.pages
    ]
    for warning in got.warnings:
        logger.info("%s: %s", source, warning)
    return LoadedDocument(
        source, doc_title, kind, sha256, pages, got.page_count, got.warnings, got.blocks
    )


def prettify_stem(stem: str) -> str:
    """File stem as a title: "guide_des-alliances_2024" -> "Guide des alliances 2024"."""
    words = " ".join(re.split(r"[\s_-]+", stem)).strip()
    if not words:
        return stem
    return words[0].upper() + words[1:]


def _relative(path: Path, corpus_dir: Path) -> PurePosixPath:
    try:
        return PurePosixPath(path.relative_to(corpus_dir).as_posix())
    except ValueError:
        pass
    try:
        return PurePosixPath(path.resolve().relative_to(corpus_dir.resolve()).as_posix())
    except ValueError:
        return PurePosixPath(path.name)


def _read_bytes(path: Path, source: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size == 0:
            raise DocumentError(source, "fichier vide")
        if size > max_bytes:
            raise TooLargeError(
                source,
                f"fichier trop volumineux ({_mb(size)} > {_mb(max_bytes)})",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(source, f"fichier illisible — {exc.strerror or exc}") from exc
    if not data:
        raise DocumentError(source, "fichier vide")
    return data


def _mb(size: int) -> str:
    """Size for staff: "1,5 Mo", "50 Mo", "12 Ko", "800 o"."""
    if size < 2**10:
        return f"{size} o"
    if size < 2**20:
        return f"{max(1, round(size / 2**10))} Ko"
    return f"{size / 2**20:.1f}".replace(".", ",").removesuffix(",0") + " Mo"
