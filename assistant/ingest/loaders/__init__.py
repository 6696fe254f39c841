"""Corpus files to langchain ``Document``s: find them, load one, fail per document with a reason.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from langchain_core.documents import Document

from assistant.errors import DocumentError
from assistant.ingest.budget import ReadBudget
from assistant.ingest.loaders.html import read_html
from assistant.ingest.loaders.pdf import read_pdf
from assistant.ingest.loaders.text import read_text_file

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadedDocument",
    "discover",
    "kind_for",
    "load_document",
]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".pdf", ".html", ".htm", ".md", ".markdown", ".txt"}
)
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
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            source, f"type de fichier non pris en charge ({suffix or 'sans extension'})"
        )
    data = _read_bytes(Path(path), source, max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    kind = kind or kind_for(relative)

    if suffix == ".pdf":
        pdf = read_pdf(data, source, passwords, budget)
        doc_title = title or pdf.title or prettify_stem(relative.stem)
        meta = {"source": source, "title": doc_title, "kind": kind, "sha256": sha256}
        pages = [
            Document(page_content=text, metadata={**meta, "page": n}) for n, text in pdf.numbered
        ]
        for warning in pdf.warnings:
            logger.info("%s: %s", source, warning)
        return LoadedDocument(source, doc_title, kind, sha256, pages, pdf.page_count, pdf.warnings)

    if suffix in (".html", ".htm"):
        found_title, text = read_html(data, source)
    else:
        found_title, text = read_text_file(data, source, markdown=suffix != ".txt")
    doc_title = title or found_title or prettify_stem(relative.stem)
    meta = {"source": source, "title": doc_title, "kind": kind, "sha256": sha256}
    page = Document(page_content=text, metadata=meta)
    return LoadedDocument(source, doc_title, kind, sha256, [page], None, [])


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
            raise DocumentError(
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
