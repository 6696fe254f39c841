"""Writing to a build's collection and catalogue, in the order that keeps search whole.

A changed document is written as a new version next to the old one (chunk ids carry the
version), then the catalogue switches to it in one SQLite write, then the old version's chunks
are deleted: killed at any moment, either the old or the new version is visible, never a mix.
A chunk whose page, title and text are already stored (previous version, a renamed file, a
version a killed refresh wrote) gets its stored vector copied instead of being embedded again.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from langchain_core.documents import Document

from assistant.errors import ConfigError
from assistant.indexing.build import embedding_text
from assistant.indexing.catalogue import ALIAS, PENDING, DocumentRecord, is_live
from assistant.indexing.hashing import chunk_key
from assistant.indexing.plan import Plan
from assistant.indexing.store import IndexStore
from assistant.ingest.loaders import LoadedDocument
from assistant.types import DocumentReport, Status

_EMBED_BATCH = 64  # texts per embedder call: a progress display moves at each
_WRITE_BATCH = 512  # vectors per Chroma write: 2.6 CPU s per 4,096 vectors, against 9 in 16s


@dataclass
class Stored:
    """A chunk already in the collection (any version, maybe left by a killed refresh)."""

    id: str
    text: str
    meta: dict[str, Any]


def stored(store: IndexStore, sources: Sequence[str]) -> list[Stored]:
    """Every stored chunk of ``sources``, whatever its version."""
    where: Any = {"source": {"$in": list(sources)}}
    got = store.collection.get(where=where, include=["documents", "metadatas"])
    docs = got.get("documents") or []
    metas = got.get("metadatas") or []
    return [
        Stored(cid, text or "", dict(meta or {}))
        for cid, text, meta in zip(got["ids"], docs, metas, strict=True)
    ]


def tag_version(chunks: Sequence[Document], sha: str) -> None:
    """Give ``chunks`` the ids the collection stores them under: ids carry the version, so
    two versions never share a chunk (the early index of a first build, ``indexing.early``,
    uses the same ids, so its passages and the stored ones are the same passages)."""
    tag = f"-{sha[:12]}"
    for c in chunks:
        base = str(c.metadata["chunk_id"])
        if not base.endswith(tag):  # tagging twice changes nothing
            c.id = c.metadata["chunk_id"] = base + tag


@dataclass
class Prepared:
    """A document loaded and chunked, to be written as its new version."""

    source: str
    loaded: LoadedDocument
    chunks: list[Document]
    previous: DocumentRecord | None  # its catalogue row before this refresh, if any


def write_version(
    store: IndexStore,
    plan: Plan,
    loaded: LoadedDocument,
    chunks: list[Document],
    previous: DocumentRecord | None,
    source: str,
    dry_run: bool,
) -> DocumentReport:
    """Write the new version beside the old one, switch the catalogue, then drop the old."""
    return write_versions(store, plan, [Prepared(source, loaded, chunks, previous)], dry_run)[0]


def write_versions(
    store: IndexStore,
    plan: Plan,
    docs: Sequence[Prepared],
    dry_run: bool,
    write: Run | None = None,
) -> list[DocumentReport]:
    """``write_version`` for several documents at once, in the same order of steps: their new
    versions are written (vectors copied or embedded in full batches, stored in big writes:
    Chroma costs ~3x less CPU per vector in writes of 512 than of 16), their sentences warmed,
    then the catalogue switches all of them in one write, then their old versions go. Killed
    at any moment, each document shows its old version or its new one, never a mix.

    ``write`` runs the writes (a ``Writer``: in order, on a thread of its own, while this
    thread embeds the next group); by default they run here, before this returns."""
    if not docs:
        return []
    for d in docs:
        tag_version(d.chunks, d.loaded.sha256)
    wanted = [d.source for d in docs]
    wanted += [r for d in docs if (r := plan.renamed_from.get(d.source))]
    by_source: dict[str, list[Stored]] = {}
    for e in stored(store, wanted):
        by_source.setdefault(str(e.meta.get("source", "")), []).append(e)
    reports: list[DocumentReport] = []
    pending: list[DocumentRecord] = []
    copy: list[Document] = []
    copy_from: list[str] = []
    embed: list[Document] = []
    switch: list[DocumentRecord] = []
    forget: list[str] = []
    drop: list[str] = []
    for d in docs:
        renamed_from = plan.renamed_from.get(d.source)
        existing = by_source.get(d.source, []) + (
            by_source.get(renamed_from, []) if renamed_from else []
        )
        doc, to_copy, to_embed = _compare(d, existing, renamed_from)
        reports.append(doc)
        pool = {chunk_key(e.meta, e.text): e.id for e in existing}
        copy += to_copy
        copy_from += [pool[chunk_key(c.metadata, c.page_content)] for c in to_copy]
        embed += to_embed
        if d.previous is None:  # catalogued at once, so its chunks stay hidden until the switch
            pending.append(_record(d.source, PENDING))
        loaded = d.loaded
        switch.append(
            DocumentRecord(
                d.source,
                loaded.sha256,
                loaded.title,
                loaded.kind,
                loaded.page_count,
                len(d.chunks),
                "warning" if loaded.warnings else "indexed",
                "; ".join(loaded.warnings),
                time.time(),
            )
        )
        if renamed_from:
            forget.append(renamed_from)
        keep = {str(c.id) for c in d.chunks}
        drop += [e.id for e in existing if e.id not in keep]
    if not dry_run:
        run = write or _now
        plan.wrote = True
        run(store.save_documents, pending)
        run(copy_vectors, store, copy, copy_from)
        if plan.planned is not None and embed:
            plan.planned(len(embed))
        embed_chunks(store, embed, plan.embedded, run)
        # before the switch: the first answer embeds none. On the writer's thread: splitting
        # and the sidecar's SQLite writes overlap the next group's embedding (the embedder
        # itself takes one caller at a time)
        run(warm_sentences, plan, [c for d in docs for c in d.chunks])
        run(_switch, store, plan, switch, forget, drop)
    return reports


def _switch(
    store: IndexStore,
    plan: Plan,
    records: list[DocumentRecord],
    forget: list[str],
    drop: list[str],
) -> None:
    store.save_documents(records, forget)  # from here search shows the new versions
    delete_chunks(store, drop, plan)


Run = Callable[..., None]
"""run(fn, *args): a write, done now or queued (``Writer``), in the order given."""


def _now(fn: Callable[..., object], *args: object) -> None:
    fn(*args)


class Writer:
    """A refresh's writes (Chroma upserts, catalogue switches, deletions), run in the order
    given on one thread of their own, so the refresh's thread embeds the next batch while
    Chroma stores the last one (an upsert of 512 vectors waits ~0.5 s on Chroma's threads).
    At most ``depth`` writes wait; the first error is raised by the next call or ``close``.
    Writes run in the caller's context (``bulk_embedding`` is a context variable)."""

    def __init__(self, depth: int = 8) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="alliance-writer")
        self._queued: deque[Future[None]] = deque()
        self._depth = depth

    def __call__(self, fn: Callable[..., object], *args: object) -> None:
        while self._queued and self._queued[0].done():
            self._queued.popleft().result()  # raises the error of a failed write
        context = contextvars.copy_context()
        self._queued.append(self._pool.submit(context.run, _now, fn, *args))
        while len(self._queued) > self._depth:
            self._queued.popleft().result()

    def drain(self) -> None:
        """Wait for every write queued; raises the first error."""
        try:
            while self._queued:
                self._queued.popleft().result()
        except BaseException:
            for f in self._queued:  # after a failed write, the later ones are not run
                f.cancel()
            raise

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.drain()
            else:  # the refresh failed: what was queued still runs, in order, then stop
                with contextlib.suppress(BaseException):
                    self.drain()
        finally:
            self._pool.shutdown(wait=True)


def _compare(
    d: Prepared, existing: list[Stored], renamed_from: str | None
) -> tuple[DocumentReport, list[Document], list[Document]]:
    """What changed in ``d`` against its stored chunks (``existing``: of any version, under
    its name or the one it was renamed from): its report, the chunks whose vector can be
    copied, those to embed."""
    previous, chunks, loaded = d.previous, d.chunks, d.loaded
    old_sha = previous.sha256 if previous is not None and is_live(previous) else None
    old_source = d.source
    if renamed_from:
        old_source, old_sha = renamed_from, loaded.sha256  # a rename keeps the content
    old = [
        e
        for e in existing
        if e.meta.get("source") == old_source and e.meta.get("sha256") == old_sha
    ]
    old_keys = {chunk_key(e.meta, e.text): e for e in old}
    new_keys = {chunk_key(c.metadata, c.page_content): c for c in chunks}
    present = {e.id for e in existing}
    pool = {chunk_key(e.meta, e.text) for e in existing}
    todo = [c for c in chunks if c.id not in present]
    copy = [c for c in todo if chunk_key(c.metadata, c.page_content) in pool]
    embed = [c for c in todo if chunk_key(c.metadata, c.page_content) not in pool]
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
    report = DocumentReport(
        source=d.source,
        status=status,
        reason="; ".join(reasons),
        chunks_added=len(embed),
        chunks_removed=removed,
        chunks_kept=len(chunks) - len(embed),
        pages=loaded.page_count,
        pages_changed=sorted(int(p) for p in pages if p is not None) if status == "updated" else [],
        renamed_from=renamed_from or "",
    )
    return report, copy, embed


def _record(source: str, status: str, reason: str = "", sha: str = "") -> DocumentRecord:
    return DocumentRecord(source, sha, "", "", None, 0, status, reason, time.time())


def save_status(
    store: IndexStore, source: str, status: str, reason: str = "", sha: str = ""
) -> None:
    """Catalogue ``source`` with no searchable chunk: failed (with why) or pending (a new
    document while its first version is written, so its chunks stay hidden until then)."""
    store.save_document(_record(source, status, reason, sha))


def embed_chunks(
    store: IndexStore,
    chunks: list[Document],
    embedded: Callable[[int], None] | None = None,
    write: Run | None = None,
) -> None:
    """Embed ``chunks`` (with their title, ``embedding_text``) ``_EMBED_BATCH`` at a time,
    calling ``embedded(n)`` after each (progress), and store them ``_WRITE_BATCH`` at a time
    (through ``write`` if given, see ``Writer``)."""
    run = write or _now
    embedder = store.vectorstore.embeddings
    if embedder is None:
        raise ConfigError("no embedder configured for the index")
    for start in range(0, len(chunks), _WRITE_BATCH):
        part = chunks[start : start + _WRITE_BATCH]
        vectors: list[list[float]] = []
        for first in range(0, len(part), _EMBED_BATCH):
            batch = part[first : first + _EMBED_BATCH]
            titles = [str(c.metadata.get("title", "")) for c in batch]
            texts = [embedding_text(t, c.page_content) for t, c in zip(titles, batch, strict=True)]
            vectors += embedder.embed_documents(texts)
            if embedded is not None:
                embedded(len(batch))
        run(
            _upsert,
            store,
            [str(c.id) for c in part],
            np.asarray(vectors, dtype=np.float32),
            [c.page_content for c in part],
            [c.metadata for c in part],
        )


def _upsert(
    store: IndexStore, ids: list[str], vectors: Any, texts: list[str], metas: list[Any]
) -> None:
    store.collection.upsert(ids=ids, embeddings=vectors, documents=texts, metadatas=metas)


def copy_vectors(store: IndexStore, chunks: list[Document], from_ids: list[str]) -> None:
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


def warm_sentences(plan: Plan, chunks: Sequence[Document]) -> None:
    """Have ``plan.sentences`` (if any) precompute what answers need of ``chunks``."""
    if plan.sentences is not None and chunks:
        plan.sentences.warm([(str(c.id), c.page_content) for c in chunks])


def warm_missing(store: IndexStore, plan: Plan) -> int:
    """Chunks of the collection ``plan.sentences`` never saw (an index built before it, or in
    bulk): warm them now. Costs a listing of ids when there are none. Returns how many."""
    if plan.sentences is None:
        return 0
    ids: list[str] = []
    total = store.count()
    for offset in range(0, total, 5000):
        ids += store.collection.get(include=[], limit=5000, offset=offset)["ids"]
    todo = plan.sentences.missing(ids)
    for start in range(0, len(todo), 500):
        got = store.collection.get(ids=todo[start : start + 500], include=["documents"])
        texts = got.get("documents") or []
        plan.sentences.warm([(cid, t or "") for cid, t in zip(got["ids"], texts, strict=True)])
    return len(todo)


def delete_chunks(store: IndexStore, ids: Iterable[str], plan: Plan | None = None) -> int:
    """Delete chunks, and what ``plan.sentences`` computed for them."""
    ids = list(ids)
    for start in range(0, len(ids), 500):
        store.collection.delete(ids=ids[start : start + 500])
    if plan is not None and plan.sentences is not None and ids:
        plan.sentences.forget(ids)
    return len(ids)


def write_alias(
    store: IndexStore,
    plan: Plan,
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
            save_status(store, alias, "failed", reason, sha)
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
        removed = delete_chunks(store, [e.id for e in stored(store, [alias])], plan)
        if removed:
            plan.wrote = True
    return DocumentReport(
        source=alias,
        status="unchanged" if same else "warning",
        reason=reason,
        chunks_removed=removed,
        duplicate_of=primary,
    )


def remove(store: IndexStore, plan: Plan, source: str, dry_run: bool) -> DocumentReport:
    """A file gone from the corpus: forget it (hides its chunks at once), then delete them."""
    ids = [e.id for e in stored(store, [source])]
    if not dry_run:
        store.forget_document(source)
        if delete_chunks(store, ids, plan):
            plan.wrote = True
    return DocumentReport(source=source, status="removed", chunks_removed=len(ids))
