"""Carry-over during a build switch: a document that cannot be read now keeps the version the
answering collection has, so switching to the new build never drops it."""

from __future__ import annotations

import time

from langchain_core.documents import Document

from assistant.indexing.catalogue import PENDING, DocumentRecord, is_live
from assistant.indexing.plan import Plan
from assistant.indexing.store import IndexStore
from assistant.indexing.write import embed_chunks, save_status, stored, warm_sentences
from assistant.types import DocumentReport


def carried(
    store: IndexStore,
    carry: IndexStore | None,
    carried_docs: dict[str, DocumentRecord],
    plan: Plan,
    doc: DocumentReport,
    dry_run: bool,
) -> DocumentReport:
    """A document that failed with nothing of it in ``store``: copy in the version ``carry``
    (the collection answering during a build switch) has, re-embedded with ``store``'s model
    from the stored passages; the report says it was kept. ``carried_docs`` is ``carry``'s
    catalogue."""
    if carry is None or doc.status != "failed" or doc.chunks_kept or doc.duplicate_of:
        return doc
    record = carried_docs.get(doc.source)
    if record is None or not is_live(record):
        return doc
    kept = [
        Document(page_content=e.text, metadata=e.meta, id=e.id)
        for e in stored(carry, [doc.source])
        if e.meta.get("sha256") == record.sha256
    ]
    if not kept:
        return doc
    if not dry_run:
        plan.wrote = True
        save_status(store, doc.source, PENDING)
        if plan.planned is not None:
            plan.planned(len(kept))
        embed_chunks(store, kept, plan.embedded)
        warm_sentences(plan, kept)
        store.save_document(
            DocumentRecord(**{**vars(record), "chunks": len(kept), "indexed_at": time.time()})
        )
    doc.chunks_added = doc.chunks_kept = len(kept)
    doc.pages = record.pages
    doc.reason += f" (version précédente conservée, reprise de l'index {carry.build.label})"
    return doc
