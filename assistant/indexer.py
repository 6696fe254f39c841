"""Incremental refresh of the index from the corpus folder.

Per document: an unchanged file (same sha256 as last time) is not even read; a changed one is
loaded, chunked and passed to langchain's indexing API with a SQL record manager, which embeds
only chunks whose id is new and deletes the document's chunks that disappeared; a file gone from
the corpus leaves the index; a file that cannot be read is reported and its previous chunks stay.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from langchain_core.indexing import index

from assistant.chunking import split_pages
from assistant.errors import DocumentError, IndexLockedError
from assistant.loaders import LoadedDocument, discover, load_document
from assistant.settings import Settings
from assistant.store import DocumentRecord, IndexStore
from assistant.types import DocumentReport, RefreshReport, Status

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
"""progress(done, total, source): called before each document."""


@contextmanager
def refresh_lock(index_dir: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock: a second refresh fails fast with IndexLockedError."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / "refresh.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLockedError(
                f"a refresh is already running on {index_dir} (lock held); try again later"
            ) from exc
        yield
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def refresh(
    settings: Settings,
    store: IndexStore,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RefreshReport:
    """Bring the index in line with ``settings.corpus_dir``; see the module docstring."""
    started = time.perf_counter()
    report = RefreshReport(embedder=settings.embedder, dry_run=dry_run)
    corpus = settings.corpus_dir
    with refresh_lock(settings.index_dir):
        known = store.documents()
        paths = discover(corpus) if corpus.is_dir() else []
        seen: set[str] = set()
        for i, path in enumerate(paths):
            source = path.relative_to(corpus).as_posix()
            seen.add(source)
            if progress:
                progress(i, len(paths), source)
            report.documents.append(
                _refresh_one(settings, store, path, source, known.get(source), dry_run)
            )
        for source in sorted(set(known) - seen):
            removed = len(store.chunk_ids_for(source))
            if not dry_run:
                store.delete_source(source)
                store.forget_document(source)
            report.documents.append(
                DocumentReport(source=source, status="removed", chunks_removed=removed)
            )
        if progress:
            progress(len(paths), len(paths), "")
    report.seconds = time.perf_counter() - started
    log.info(
        "refresh done in %.1fs: %d added, %d updated, %d unchanged, %d removed, %d failed",
        report.seconds,
        report.count("added"),
        report.count("updated"),
        report.count("unchanged"),
        report.count("removed"),
        report.count("failed"),
    )
    return report


def _refresh_one(
    settings: Settings,
    store: IndexStore,
    path: Path,
    source: str,
    previous: DocumentRecord | None,
    dry_run: bool,
) -> DocumentReport:
    try:
        sha = file_sha256(path)
    except OSError as exc:
        return DocumentReport(source=source, status="failed", reason=f"illisible : {exc}")
    if previous is not None and previous.sha256 == sha and previous.status != "failed":
        return DocumentReport(
            source=source,
            status="unchanged",
            chunks_kept=previous.chunks,
            pages=previous.pages,
            reason=previous.reason if previous.status == "warning" else "",
        )
    try:
        loaded = load_document(
            path,
            settings.corpus_dir,
            passwords=settings.pdf_passwords,
            max_bytes=int(settings.max_file_mb * 2**20),
        )
    except DocumentError as exc:
        log.warning("skipping %s: %s", source, exc.reason)
        if not dry_run and previous is None:
            store.save_document(
                DocumentRecord(source, sha, "", "", None, 0, "failed", exc.reason, time.time())
            )
        kept = len(store.chunk_ids_for(source)) if previous is not None else 0
        reason = exc.reason + (" (version précédente conservée)" if kept else "")
        return DocumentReport(source=source, status="failed", reason=reason, chunks_kept=kept)
    return _index_loaded(settings, store, loaded, previous, dry_run)


def _index_loaded(
    settings: Settings,
    store: IndexStore,
    loaded: LoadedDocument,
    previous: DocumentRecord | None,
    dry_run: bool,
) -> DocumentReport:
    chunks = split_pages(loaded.pages, settings.chunk_size, settings.chunk_overlap)
    old_ids = set(store.chunk_ids_for(loaded.source))
    new_ids = {c.metadata["chunk_id"] for c in chunks}
    changed_pages = sorted(
        {int(c.metadata["page"]) for c in chunks if "page" in c.metadata and c.id not in old_ids}
    )
    added = len(new_ids - old_ids)
    removed = len(old_ids - new_ids)
    kept = len(new_ids & old_ids)
    if not dry_run:
        result = index(
            chunks,
            store.record_manager,
            store.vectorstore,
            cleanup="incremental",
            source_id_key="source",
            key_encoder=lambda doc: str(doc.metadata["chunk_id"]),
            batch_size=64,
        )
        added, removed = result["num_added"], result["num_deleted"]
        kept_chunks = [c for c in chunks if c.id in old_ids]
        if kept_chunks:  # same text, maybe a new file hash or title: update metadata only
            store.update_metadata(
                [str(c.id) for c in kept_chunks], [c.metadata for c in kept_chunks]
            )
        store.save_document(
            DocumentRecord(
                loaded.source,
                loaded.sha256,
                loaded.title,
                loaded.kind,
                loaded.page_count,
                len(chunks),
                "warning" if loaded.warnings else "indexed",
                "; ".join(loaded.warnings),
                time.time(),
            )
        )
    status: Status
    if previous is None or (previous.status == "failed" and not old_ids):
        status = "added"
    elif added == 0 and removed == 0:
        status = "unchanged"
    else:
        status = "updated"
    reason = "; ".join(loaded.warnings) if status != "unchanged" else ""
    return DocumentReport(
        source=loaded.source,
        status=status,
        reason=reason,
        chunks_added=added,
        chunks_removed=removed,
        chunks_kept=kept,
        pages=loaded.page_count,
        pages_changed=changed_pages if status == "updated" else [],
    )
