"""The early index of a first build: French BM25, in memory, over the corpus as it reads now.

A first build embeds every passage (minutes on a laptop, more on a busy one). Loading and
chunking the same corpus takes seconds, so ``alliance serve`` answers from BM25 over the loaded
chunks while the vectors are written, then switches to hybrid search when the refresh completes
(``Assistant.warm_start``). The chunks are prepared exactly as a refresh prepares them
(``refresh.prepare_document``, ids by ``write.tag_version``), web pages of ``sources.toml``
included: a passage of the early index has the id, text and metadata it will have in the
collection, so what it cited stays the same passage once the search is hybrid.
"""

from __future__ import annotations

import logging
import time

from assistant.errors import DocumentError
from assistant.indexing.bm25 import BM25Index
from assistant.indexing.lexical import LexicalIndex, fingerprint, lexical_text
from assistant.indexing.plan import plan_refresh
from assistant.indexing.refresh import prepare_document
from assistant.indexing.store import StoredChunk
from assistant.indexing.write import tag_version
from assistant.settings import Settings

log = logging.getLogger(__name__)

EARLY_PREFIX = "early:"
"""The fingerprint of an early index starts with it (never one of a collection's)."""


def build_early(settings: Settings, *, fetch: bool = True) -> LexicalIndex:
    """BM25 and chunk table over every readable document of ``settings.corpus_dir`` (and the
    web pages of ``sources.toml``, fetched unless ``fetch`` is False: a refresh right after
    asks the site again with the copy's ETag). A document that cannot be read is left out, as
    a refresh would; nothing is written under ``index_dir`` but the web copies.

    Raises ``ConfigError`` for a broken ``sources.toml`` (the refresh will report it)."""
    started = time.perf_counter()
    plan = plan_refresh(settings, {}, fetch=fetch)
    chunks: list[StoredChunk] = []
    documents = 0
    for source in sorted(plan.shas):
        if source in plan.alias_of:  # the same content under another name: indexed once
            continue
        try:
            loaded, docs = prepare_document(settings, plan, source)
        except DocumentError as exc:
            log.info("early index: %s left out (%s)", source, exc.reason)
            continue
        tag_version(docs, loaded.sha256)
        chunks += [StoredChunk(str(d.id), d.page_content, dict(d.metadata)) for d in docs]
        documents += 1
    ids = [c.id for c in chunks]
    bm25 = BM25Index.build(ids, [lexical_text(c) for c in chunks])
    index = LexicalIndex(bm25, {c.id: c for c in chunks}, EARLY_PREFIX + fingerprint(ids))
    log.info(
        "early index: %d documents, %d passages in %.1fs",
        documents,
        len(chunks),
        time.perf_counter() - started,
    )
    return index


def is_early(index: LexicalIndex) -> bool:
    return index.fingerprint.startswith(EARLY_PREFIX)


__all__ = ["EARLY_PREFIX", "build_early", "is_early"]
