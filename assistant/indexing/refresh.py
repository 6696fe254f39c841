"""Incremental, crash-safe refresh of the index from the corpus folder: the orchestration.

Per document, the catalogue (``indexing.catalogue``) records the sha256 of the version that is
fully indexed, and search shows only chunks whose ``sha256`` matches it. The refresh plans
(``indexing.plan``: hashes, renames, aliases), then per document loads and chunks the file and
writes the new version beside the old one (``indexing.write``), switching the catalogue row in
one write. A refresh killed at any moment thus leaves either the old or the new version
visible, never a mix; the next refresh reuses the vectors already written and sweeps what the
killed one left behind (``indexing.sweep``).

Nothing is embedded twice: a chunk whose page, title and text already exist gets its stored
vector copied. The same file content under two names is indexed once (the other name is an
alias); a file moved or renamed is not re-embedded; a file that cannot be read is reported and
keeps its previous chunks; files of an unsupported type are reported, never silently skipped.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import DocumentError
from assistant.indexing.carry import carried
from assistant.indexing.catalogue import DocumentRecord, is_live
from assistant.indexing.paths import WEB_DIR, IndexPaths
from assistant.indexing.plan import Plan, SentenceWarmer, plan_refresh
from assistant.indexing.refresh_lock import refresh_lock
from assistant.indexing.refresh_log import append_log
from assistant.indexing.store import IndexStore
from assistant.indexing.sweep import sweep
from assistant.indexing.write import (
    Prepared,
    Writer,
    remove,
    save_status,
    warm_missing,
    write_alias,
    write_versions,
)
from assistant.ingest.budget import ReadBudget
from assistant.ingest.chunking import chunk_document
from assistant.ingest.loaders import LoadedDocument, load_document
from assistant.ingest.manifest import Override
from assistant.ingest.web_fetch import WebCache
from assistant.settings import Settings
from assistant.types import DocumentReport, RefreshReport

log = logging.getLogger(__name__)

_READ_AHEAD = 32  # documents loaded and chunked ahead of the writing

Progress = Callable[[int, int, str], None]
"""progress(done, total, source): called before each document. If the callable also has an
``embedded(n)`` method, it is called after each batch of ``n`` passages embedded (a first build
spends minutes inside one document: this is how a progress display shows it moving)."""

Finish = Callable[[RefreshReport], None]
"""finish(report): called once every document was handled, still under the refresh lock (the
caller builds the BM25 side and switches the answering collection there)."""


def refresh(
    settings: Settings,
    store: IndexStore,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    finish: Finish | None = None,
    carry: IndexStore | None = None,
    sentences: SentenceWarmer | None = None,
) -> RefreshReport:
    """Bring ``store`` in line with ``settings.corpus_dir``; see the module docstring.

    ``carry`` is the collection that answers while ``store`` is being built for a new build:
    a document that cannot be read now but is indexed there keeps that version in ``store``
    too (its stored passages embedded with the new model), so switching never drops it.
    ``sentences`` precomputes what answers need of each chunk written (its sentence vectors),
    before the chunk becomes searchable, and forgets it with the chunk."""
    started = time.perf_counter()
    report = RefreshReport(embedder=store.build.label, dry_run=dry_run)
    paths = IndexPaths(settings.index_dir)
    with refresh_lock(settings.index_dir):
        pending = paths.pending(store.slug)
        interrupted = pending.exists()
        known = store.documents()
        carried_docs = carry.documents() if carry is not None else {}  # read once
        plan = plan_refresh(settings, known)  # a broken sources.toml stops here, before any change
        plan.embedded = getattr(progress, "embedded", None)
        plan.planned = getattr(progress, "planned", None)
        plan.sentences = sentences
        if not dry_run:
            pending.touch()
        sources = sorted([*plan.shas, *plan.unreadable])
        to_read = [s for s in sources if _to_read(plan, s, known)]
        reading = set(to_read)
        group: list[Prepared] = []

        def flush() -> None:
            for doc in write_versions(store, plan, group, dry_run, writer):
                doc.aliases = plan.aliases.get(doc.source, [])
                doc.reason = _join(plan.notes.get(doc.source, ""), doc.reason)
                report.documents.append(doc)
            group.clear()

        reader = _Reader(lambda s: prepare_document(settings, plan, s), to_read)
        with reader, Writer() as writer:
            for i, source in enumerate(sources):
                if progress:
                    progress(i, len(sources), source)
                if source in plan.unreadable:
                    unreadable = _unreadable(source, plan.unreadable[source], known)
                    doc = carried(store, carry, carried_docs, plan, unreadable, dry_run)
                    if not dry_run and not doc.chunks_kept:
                        # catalogued as failed (staff see why; serve does not take the index
                        # for stale at each start); retried at the next refresh
                        save_status(store, source, "failed", doc.reason)
                    report.documents.append(doc)
                elif source in plan.alias_of:
                    continue
                elif source not in reading:
                    report.documents.append(_unchanged(plan, source, known[source]))
                else:
                    got = reader.next(source)
                    if isinstance(got, DocumentError):
                        doc = _failed(store, plan, source, known, got, dry_run)
                        report.documents.append(
                            carried(store, carry, carried_docs, plan, doc, dry_run)
                        )
                        continue
                    loaded, chunks = got
                    group.append(Prepared(source, loaded, chunks, known.get(source)))
                    # a group as big as a write batch, or whatever is read when the reader
                    # is behind: the embedder never waits for a group to fill
                    chunks_read = sum(len(d.chunks) for d in group)
                    if chunks_read >= settings.write_group_chunks or not reader.ready():
                        flush()
            flush()
        by_source = {d.source: d for d in report.documents}
        for alias, primary in sorted(plan.alias_of.items()):
            doc = write_alias(store, plan, alias, primary, by_source[primary], known, dry_run)
            report.documents.append(doc)
        gone = set(known) - set(plan.shas) - set(plan.unreadable)
        for source in sorted(gone - set(plan.renamed_from.values())):
            report.documents.append(remove(store, plan, source, dry_run))
        if not dry_run:
            WebCache(paths.web).prune(plan.web)
        for name in plan.unsupported:
            suffix = Path(name).suffix.lower() or "sans extension"
            reason = f"type de fichier non pris en charge ({suffix})"
            report.documents.append(DocumentReport(source=name, status="failed", reason=reason))
        if progress:
            progress(len(sources), len(sources), "")
        if not dry_run:
            if interrupted:
                swept = sweep(store, plan)
                log.warning("previous refresh was interrupted: %d stray chunks removed", swept)
            caught_up = warm_missing(store, plan)
            if caught_up:
                log.info("sentence vectors computed for %d chunks indexed before", caught_up)
            if plan.wrote or interrupted:
                # Chunk ids changed (maybe with no vector embedded, e.g. a rename): whoever
                # opens the lexical side next rebuilds it. Not done per document, so a server
                # searching during the refresh does not rebuild its BM25 side again and again
                # (new versions are found through the dense side meanwhile).
                store.set_fingerprint("")
            pending.unlink(missing_ok=True)
        report.documents.sort(key=lambda d: d.source)
        if finish is not None and not dry_run:
            finish(report)
        report.seconds = time.perf_counter() - started
        append_log(settings.index_dir, report)
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


# -- one document --------------------------------------------------------------------------
def _unreadable(source: str, reason: str, known: dict[str, DocumentRecord]) -> DocumentReport:
    previous = known.get(source)
    kept = previous.chunks if previous is not None and is_live(previous) else 0
    if kept:
        reason += " (version précédente conservée)"
    return DocumentReport(source=source, status="failed", reason=reason, chunks_kept=kept)


def _to_read(plan: Plan, source: str, known: dict[str, DocumentRecord]) -> bool:
    """Whether ``source`` is loaded and chunked by this refresh (not unchanged, not an alias
    of another name, readable)."""
    if source in plan.unreadable or source in plan.alias_of:
        return False
    previous = known.get(source)
    return not (previous is not None and previous.sha256 == plan.shas[source] and is_live(previous))


def _unchanged(plan: Plan, source: str, previous: DocumentRecord) -> DocumentReport:
    return DocumentReport(
        source=source,
        status="unchanged",
        chunks_kept=previous.chunks,
        pages=previous.pages,
        reason=_join(
            plan.notes.get(source, ""), previous.reason if previous.status == "warning" else ""
        ),
        aliases=plan.aliases.get(source, []),
    )


def _failed(
    store: IndexStore,
    plan: Plan,
    source: str,
    known: dict[str, DocumentRecord],
    exc: DocumentError,
    dry_run: bool,
) -> DocumentReport:
    """A document that cannot be read or chunked: reported, its previous version (if any)
    kept, else catalogued as failed."""
    log.warning("skipping %s: %s", source, exc.reason)
    previous = known.get(source)
    live = previous is not None and is_live(previous)
    if not dry_run and not live:
        save_status(store, source, "failed", exc.reason, plan.shas[source])
    kept = previous.chunks if previous is not None and live else 0
    reason = _join(
        plan.notes.get(source, ""), exc.reason + (" (version précédente conservée)" if kept else "")
    )
    return DocumentReport(
        source=source,
        status="failed",
        reason=reason,
        chunks_kept=kept,
        aliases=plan.aliases.get(source, []),
    )


Read = tuple[LoadedDocument, list[Document]] | DocumentError


class _Reader:
    """Loads and chunks the documents a refresh writes, in order, on a thread of its own and
    at most ``_READ_AHEAD`` documents ahead: reading the next documents overlaps the
    embedding of the previous ones (the embedders spend most of their time in numpy and C,
    outside the GIL). A ``DocumentError`` is handed over as the document's result; any other
    exception is raised again by ``next`` in the refresh's thread."""

    def __init__(
        self, read: Callable[[str], tuple[LoadedDocument, list[Document]]], sources: list[str]
    ) -> None:
        self._read = read
        self._sources = sources
        self._queue: queue.Queue[tuple[str, Read | BaseException]] = queue.Queue(_READ_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alliance-reader", daemon=True)

    def __enter__(self) -> _Reader:
        if self._sources:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        while self._thread.is_alive():  # unblock a put, then let the thread see the stop
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        for source in self._sources:
            got: Read | BaseException
            try:
                got = self._read(source)
            except BaseException as exc:  # a DocumentError is a result; others end the walk
                got = exc
            while not self._stop.is_set():
                try:
                    self._queue.put((source, got), timeout=0.5)
                    break
                except queue.Full:
                    continue
            fatal = isinstance(got, BaseException) and not isinstance(got, DocumentError)
            if fatal or self._stop.is_set():
                return

    def ready(self) -> bool:
        """Whether the next document is read already."""
        return not self._queue.empty()

    def next(self, source: str) -> Read:
        """The next document read, which is ``source``."""
        got_source, got = self._queue.get()
        if got_source != source:  # the two walks are the same list: a bug if not
            raise RuntimeError(f"reader out of step: {got_source!r} for {source!r}")
        if isinstance(got, BaseException) and not isinstance(got, DocumentError):
            raise got
        return got


def prepare_document(
    settings: Settings, plan: Plan, source: str
) -> tuple[LoadedDocument, list[Document]]:
    """Load and chunk one planned document as the index knows it (its name, version and
    manifest metadata): what a refresh writes, and what the early index of a first build
    (``indexing.early``) searches. Raises ``DocumentError`` when it cannot be read or holds
    no passage."""
    meta = plan.overrides.get(source, Override())
    loaded = load_document(
        plan.paths[source],
        settings.corpus_dir,
        passwords=settings.pdf_passwords,
        max_bytes=int(settings.max_file_mb * 2**20),
        kind=meta.kind or None,
        title=meta.title or None,
        budget=ReadBudget.from_settings(settings),
    )
    _as_version(loaded, source, plan.shas[source], meta)
    chunks = chunk_document(
        loaded.pages, loaded.blocks, settings.chunk_size, settings.chunk_overlap
    )
    if not chunks:
        raise DocumentError(source, "aucun passage à indexer")
    return loaded, chunks


def _join(*reasons: str) -> str:
    return "; ".join(r for r in reasons if r)


def _as_version(loaded: LoadedDocument, source: str, sha: str, meta: Override) -> None:
    """Name the loaded document as the index knows it (a web page's copy under its URL) and
    stamp its version; add the manifest's date."""
    loaded.source, loaded.sha256 = source, sha
    for page in loaded.pages:
        page.metadata["source"], page.metadata["sha256"] = source, sha
        if meta.date:
            page.metadata["date"] = meta.date


__all__ = ["WEB_DIR", "Finish", "Progress", "prepare_document", "refresh"]
