"""Hybrid retrieval: dense (Chroma) and French BM25 rankings fused by weighted reciprocal rank
fusion, near-duplicate chunks collapsed, optional filter by document kind."""

from __future__ import annotations

import logging
import re
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever

from assistant.errors import QueryError
from assistant.indexing.lexical import LexicalIndex
from assistant.indexing.refresh import chunk_filter
from assistant.indexing.store import IndexStore, StoredChunk
from assistant.retrieval.fusion import near_duplicates, rrf
from assistant.settings import KINDS, Settings
from assistant.types import Hit

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000


@dataclass(frozen=True)
class Scored:
    """A candidate chunk with every signal the answerer may want."""

    chunk: StoredChunk
    fused: float
    dense: float  # cosine similarity to the query (0 if not in the dense candidates)
    bm25: float  # raw BM25 score (0 if not in the lexical candidates)
    dense_rank: int | None
    bm25_rank: int | None

    def to_hit(self) -> Hit:
        meta = self.chunk.metadata
        page = meta.get("page")
        return Hit(
            text=self.chunk.text,
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            kind=str(meta.get("kind", "autre")),
            page=int(page) if page is not None else None,
            score=round(self.fused, 6),
            chunk_id=self.chunk.id,
        )


@dataclass
class Retrieval:
    """The outcome of one search: the query, its embedding and ranked candidates."""

    query: str
    query_vector: list[float]
    results: list[Scored] = field(default_factory=list)
    # In how many chunks of the whole corpus a stemmed term occurs (for abstention rules).
    document_frequency: Callable[[str], int] | None = None

    @property
    def hits(self) -> list[Hit]:
        return [r.to_hit() for r in self.results]


def normalize_query(query: str) -> str:
    return re.sub(r"\s+", " ", query).strip()


def validate(query: str, k: int, kinds: Sequence[str] | None) -> str:
    q = normalize_query(query)
    if not q:
        raise QueryError("la question est vide")
    if len(q) > MAX_QUERY_CHARS:
        raise QueryError(f"la question dépasse {MAX_QUERY_CHARS} caractères ({len(q)})")
    if not 1 <= k <= 50:
        raise QueryError(f"k doit être entre 1 et 50, reçu {k}")
    for kind in kinds or ():
        if kind not in KINDS:
            raise QueryError(
                f"type de document inconnu {kind!r} ; choisir parmi {', '.join(KINDS)}"
            )
    return q


class HybridSearcher:
    """Dense + BM25 search over one IndexStore and its LexicalIndex."""

    def __init__(
        self, settings: Settings, store: IndexStore, embedder: Embeddings, lexical: LexicalIndex
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.lexical = lexical

    def retrieve(self, query: str, k: int, kinds: Sequence[str] | None = None) -> Retrieval:
        q = validate(query, k, kinds)
        vector = self.embedder.embed_query(q)
        n = max(self.settings.candidates, k * 3)
        raw_dense = self.store.query(vector, n, kinds)
        chunks = self._with_dense_chunks([cid for cid, _ in raw_dense])
        # Only chunks of each document's fully indexed version (see assistant/indexer.py): a
        # refresh in progress or killed half-way never shows a mix of two versions.
        current = chunk_filter(self.store)
        wanted = set(kinds or ())

        def allowed(cid: str) -> bool:
            c = chunks.get(cid)
            if c is None or (current is not None and not current(c.metadata)):
                return False
            return not wanted or c.metadata.get("kind") in wanted

        dense = [(cid, s) for cid, s in raw_dense if allowed(cid)]
        lexical = self.lexical.bm25.search(q, n, allowed=allowed)
        fused = rrf(
            [[cid for cid, _ in dense], [cid for cid, _ in lexical]],
            weights=[self.settings.dense_weight, self.settings.bm25_weight],
            k=self.settings.rrf_k,
        )
        dense_score = {cid: s for cid, s in dense}
        dense_rank = {cid: i + 1 for i, (cid, _) in enumerate(dense)}
        bm25_score = {cid: s for cid, s in lexical}
        bm25_rank = {cid: i + 1 for i, (cid, _) in enumerate(lexical)}
        results: list[Scored] = []
        for cid, score in fused[:n]:
            chunk = chunks.get(cid)
            if chunk is None:  # vanished between the two reads: skip, never crash
                continue
            results.append(
                Scored(
                    chunk=chunk,
                    fused=score,
                    dense=dense_score.get(cid, 0.0),
                    bm25=bm25_score.get(cid, 0.0),
                    dense_rank=dense_rank.get(cid),
                    bm25_rank=bm25_rank.get(cid),
                )
            )
        drop = set(near_duplicates([r.chunk.text for r in results], keep=k))
        results = [r for i, r in enumerate(results) if i not in drop]
        return Retrieval(
            query=q,
            query_vector=list(vector),
            results=results[:k],
            document_frequency=self.lexical.bm25.document_frequency,
        )

    def _with_dense_chunks(self, ids: Sequence[str]) -> Mapping[str, StoredChunk]:
        """The lexical table plus dense hits it does not hold yet (written by a refresh that
        runs now or since it was built), read from the collection: a document re-indexed
        during a refresh stays findable before the lexical side is rebuilt."""
        chunks = self.lexical.chunks
        missing = [cid for cid in ids if cid not in chunks]
        if not missing:
            return chunks
        got = self.store.collection.get(ids=missing, include=["documents", "metadatas"])
        docs = got.get("documents") or []
        metas = got.get("metadatas") or []
        extra = {
            cid: StoredChunk(cid, text or "", dict(meta or {}))
            for cid, text, meta in zip(got["ids"], docs, metas, strict=True)
        }
        return ChainMap(extra, chunks) if extra else chunks  # no copy of a 100k-entry table


class AllianceRetriever(BaseRetriever):
    """A langchain retriever over the same hybrid search (for chains and agents)."""

    searcher: Any
    k: int = 5
    kinds: list[str] | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.searcher.retrieve(query, self.k, self.kinds).hits
        docs = []
        for h in hits:
            meta: dict[str, Any] = h.to_dict()
            meta.pop("text")
            docs.append(Document(page_content=h.text, metadata=meta, id=h.chunk_id))
        return docs
