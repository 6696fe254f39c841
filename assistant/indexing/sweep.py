"""After a killed refresh: delete the chunks that belong to no current version."""

from __future__ import annotations

from assistant.indexing.catalogue import visible_versions
from assistant.indexing.plan import Plan
from assistant.indexing.store import IndexStore
from assistant.indexing.write import delete_chunks


def sweep(store: IndexStore, plan: Plan | None = None) -> int:
    """Delete chunks that belong to no current version (left by a killed refresh); returns
    how many went."""
    versions = visible_versions(store.documents())
    stale: list[str] = []
    total = store.count()
    for offset in range(0, total, 2000):
        got = store.collection.get(include=["metadatas"], limit=2000, offset=offset)
        for cid, meta in zip(got["ids"], got.get("metadatas") or [], strict=True):
            meta = meta or {}
            if versions.get(str(meta.get("source"))) != meta.get("sha256"):
                stale.append(cid)
    delete_chunks(store, stale, plan)
    return len(stale)
