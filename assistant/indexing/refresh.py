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

import logging
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
    remove,
    save_status,
    warm_missing,
    write_alias,
    write_version,
)
from assistant.ingest.budget import ReadBudget
from assistant.ingest.chunking import chunk_document
from assistant.ingest.loaders import LoadedDocument, load_document
from assistant.ingest.manifest import Override
from assistant.ingest.web_fetch import WebCache
from assistant.settings import Settings
from assistant.types import DocumentReport, RefreshReport

log = logging.getLogger(__name__)

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
        plan.sentences = sentences
        if not dry_run:
            pending.touch()
        sources = sorted([*plan.shas, *plan.unreadable])
        for i, source in enumerate(sources):
            if progress:
                progress(i, len(sources), source)
            if source in plan.unreadable:
                unreadable = _unreadable(source, plan.unreadable[source], known)
                doc = carried(store, carry, carried_docs, plan, unreadable, dry_run)
                if not dry_run and not doc.chunks_kept:
                    # catalogued as failed (staff see why; serve does not take the index for
                    # stale at each start); retried at the next refresh
                    save_status(store, source, "failed", doc.reason)
                report.documents.append(doc)
            elif source not in plan.alias_of:
                doc = _refresh_one(settings, store, plan, source, known, dry_run)
                report.documents.append(carried(store, carry, carried_docs, plan, doc, dry_run))
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


def _refresh_one(
    settings: Settings,
    store: IndexStore,
    plan: Plan,
    source: str,
    known: dict[str, DocumentRecord],
    dry_run: bool,
) -> DocumentReport:
    sha = plan.shas[source]
    previous = known.get(source)
    aliases = plan.aliases.get(source, [])
    note = plan.notes.get(source, "")
    if previous is not None and previous.sha256 == sha and is_live(previous):
        return DocumentReport(
            source=source,
            status="unchanged",
            chunks_kept=previous.chunks,
            pages=previous.pages,
            reason=_join(note, previous.reason if previous.status == "warning" else ""),
            aliases=aliases,
        )
    try:
        loaded, chunks = prepare_document(settings, plan, source)
    except DocumentError as exc:
        log.warning("skipping %s: %s", source, exc.reason)
        live = previous is not None and is_live(previous)
        if not dry_run and not live:
            save_status(store, source, "failed", exc.reason, sha)
        kept = previous.chunks if previous is not None and live else 0
        reason = _join(note, exc.reason + (" (version précédente conservée)" if kept else ""))
        return DocumentReport(
            source=source, status="failed", reason=reason, chunks_kept=kept, aliases=aliases
        )
    doc = write_version(store, plan, loaded, chunks, previous, source, dry_run)
    doc.aliases = aliases
    doc.reason = _join(note, doc.reason)
    return doc


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
