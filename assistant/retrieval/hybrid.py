"""Hybrid retrieval: dense (Chroma) and French BM25 rankings fused by weighted reciprocal rank
fusion, near-duplicate chunks collapsed, optional filter by document kind, then the rerank stage
(``retrieval.rerank``; by default it keeps the fused order)."""

from __future__ import annotations

import logging
import re
import threading
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from assistant.errors import QueryError
from assistant.indexing.build import embedding_text
from assistant.indexing.early import is_early
from assistant.indexing.embedders import Embedder
from assistant.indexing.lexical import LexicalIndex
from assistant.indexing.store import Store, StoredChunk
from assistant.retrieval.exact import EXACT_MAX, ExactIndex
from assistant.retrieval.fusion import Mark, mark, near_duplicates, rrf, shingles
from assistant.retrieval.rerank import KEEP_ORDER, Reranker, continues, lexical_query
from assistant.retrieval.results import EVIDENCE_TOP, Retrieval, Scored
from assistant.settings import KINDS

__all__ = ["HybridSearcher", "Mode", "Retrieval", "Scored", "validate"]

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 1000
_MAX_SHINGLES = 1024  # texts whose shingles a searcher keeps (~14 KB each for 900 characters)
_NO_CHUNK = StoredChunk("", "", {})

Mode = Literal["lexical", "hybrid"]
"""``hybrid``: dense + BM25 over a complete index; ``lexical``: over the early index of a first
build, BM25 first (see ``HybridSearcher``)."""


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
    """Dense + BM25 search over one ``Store`` and its LexicalIndex, then ``reranker``.

    Over the early index of a first build (``indexing.early``: ``lexical`` holds the corpus as
    read now) the searcher is *lexical*: BM25 alone ranks the early index's passages, and the
    first ``EVIDENCE_TOP`` are embedded to get their similarity to the query, so
    ``Retrieval.evidence_strength`` (when to decline) means what it means over a complete
    index (only those: five passages and a query took 9.5 s on 2 cores at a load of 12). The
    vectors a first build has written so far are not queried: they favour the documents
    embedded first (measured: « Quand le Pacte civique a-t-il été lancé ? » cited the one
    document then embedded, BM25 alone the charter)."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        lexical: LexicalIndex,
        reranker: Reranker = KEEP_ORDER,
        *,
        candidates: int,
        dense_weight: float,
        bm25_weight: float,
        rrf_k: int,
        exact_max: int = EXACT_MAX,
    ) -> None:
        """``candidates``: how many passages each ranking gives (at least 3k); the fused rank
        of a passage is the sum over the rankings of ``weight / (rrf_k + rank)``. Up to
        ``exact_max`` chunks the dense ranking is an exact scan of the vectors in memory
        (``retrieval.exact``), taken at the first query; 0: always the store's query."""
        self.candidates = candidates
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight
        self.rrf_k = rrf_k
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        self.mode: Mode = "lexical" if is_early(lexical) else "hybrid"
        self._sections: dict[str, list[StoredChunk]] = {}
        self._sections_of: object = None
        self._documents: dict[str, list[StoredChunk]] = {}
        self._documents_of: object = None
        self.reranker = reranker
        self.exact_max = exact_max
        self._exact: ExactIndex | None = None
        self._exact_taken = False
        self._exact_lock = threading.Lock()
        self._extra: dict[str, StoredChunk] = {}  # chunks of the copy the lexical table lacks
        self._shingles: dict[str, frozenset[int]] = {}
        self._continues: dict[str, bool] = {}  # ``continues`` of a small table's chunks
        self._marks: dict[str, Mark] = {}  # ``fusion.mark`` of a small table's chunk texts
        self._whole: tuple[object, bool] | None = None  # a filter, whether it shows the table

    def retrieve(self, query: str, k: int, kinds: Sequence[str] | None = None) -> Retrieval:
        q = validate(query, k, kinds)
        vector = self.embedder.embed_query(q)
        n = max(self.candidates, k * 3)
        early = self.mode == "lexical"
        # Only chunks of each document's fully indexed version (see indexing/catalogue.py): a
        # refresh in progress or killed half-way never shows a mix of two versions. Over the
        # early index: only its passages (the corpus as it reads now; ids carry the version).
        # Read before the dense side: a copy of the vectors taken now holds every chunk shown.
        current = None if early else self.store.chunk_filter()
        raw_dense = [] if early else self._dense(vector, n, kinds, current)
        chunks = (
            self.lexical.chunks if early else self._with_dense_chunks([c for c, _ in raw_dense])
        )
        wanted = set(kinds or ())

        def allowed(cid: str) -> bool:
            c = chunks.get(cid)
            if c is None or (current is not None and not current(c.metadata)):
                return False
            return not wanted or c.metadata.get("kind") in wanted

        # When the catalogue shows every chunk of the lexical table and no kind is asked, every
        # chunk of the table is allowed and the filter need not be called: BM25 ranks only those,
        # and the dense ranking's others (written since the table was built) are checked
        whole = not wanted and self._shows_whole_table(current)
        table = self.lexical.chunks
        dense = [(cid, s) for cid, s in raw_dense if (whole and cid in table) or allowed(cid)]
        lexical = self.lexical.bm25.search(lexical_query(q), n, allowed=None if whole else allowed)
        fused = rrf(
            [[cid for cid, _ in dense], [cid for cid, _ in lexical]],
            weights=[self.dense_weight, self.bm25_weight],
            k=self.rrf_k,
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
        # The reranker sees every candidate (the passage holding the list may be fused 20th),
        # then near-duplicates collapse until k are kept.
        results = self._with_starts(self.reranker.rerank(q, results), k, allowed)
        texts = [r.chunk.text for r in results]
        drop = set(
            near_duplicates(
                texts,
                keep=k,
                shingles_of=self._shingles_of,
                mark_of=self._marks.get if self._marks else None,
            )
        )
        results = [r for i, r in enumerate(results) if i not in drop][:k]
        if early:
            results = self._with_similarity(vector, results)
        return Retrieval(
            query=q,
            query_vector=list(vector),
            results=results,
            document_frequency=self.lexical.bm25.document_frequency,
            section_chunks=self._section_chunks,
            document_chunks=self._document_chunks,
        )

    def _dense(
        self,
        vector: Sequence[float],
        n: int,
        kinds: Sequence[str] | None,
        current: Callable[[dict[str, Any]], bool] | None,
    ) -> list[tuple[str, float]]:
        """The dense ranking: the exact scan while the catalogue shows what it was taken
        under (``current``, the chunk filter read for this query), else the store's query."""
        exact = self._exact_for(current)
        if exact is not None:
            return exact.query(vector, n, kinds)
        return self.store.query(vector, n, kinds)

    def _exact_for(self, current: Callable[[dict[str, Any]], bool] | None) -> ExactIndex | None:
        """The exact index if it may answer under ``current``: taken once, at the first query
        (the ids, then the vectors the store does not hold in memory yet), over an index of at
        most ``exact_max`` chunks that has a catalogue (a replica without one has no way to
        tell its copy is out of date). Once the catalogue shows other versions (a refresh
        runs) the store answers until this searcher is replaced."""
        if current is None or self.exact_max <= 0 or len(self.lexical.chunks) > self.exact_max:
            return None
        if not self._exact_taken:
            with self._exact_lock:
                if not self._exact_taken:
                    self._exact = self._take_exact(current)
                    self._exact_taken = True
        exact = self._exact
        if exact is None:
            return None
        if exact.shown is not current:
            if exact.shown != current:
                return None
            exact.shown = current  # the same versions (another build's rows were written)
        return exact

    def _take_exact(self, current: Callable[[dict[str, Any]], bool]) -> ExactIndex | None:
        ids = self.store.ids()
        if len(ids) > self.exact_max:
            return None
        found, matrix = self.store.unit_vectors(ids)
        table = self.lexical.chunks
        missing = [cid for cid in found if cid not in table]
        extra: dict[str, StoredChunk] = {}
        for start in range(0, len(missing), 500):
            extra.update(self.store.get_chunks(missing[start : start + 500]))
        kinds = [
            str((table.get(cid) or extra.get(cid) or _NO_CHUNK).metadata.get("kind", ""))
            for cid in found
        ]
        self._extra = extra
        prepare = getattr(self.reranker, "prepare", None)
        if callable(prepare):
            prepare(table.values())
        self._continues = {c.id: continues(c) for c in table.values()}  # 70 ms for 10k
        # The near-duplicate check then reads the shingles of true near-duplicates only: it read
        # ~6 new passages a search at 10k (0.58 -> 0.05 ms CPU); +0.65 s CPU on this first query
        self._marks = {c.text: mark(shingles(c.text)) for c in table.values()}
        log.info(
            "exact dense scan over %d chunks (%d not in the lexical table)", len(found), len(extra)
        )
        return ExactIndex(found, matrix, kinds, current)

    def _shows_whole_table(self, current: Callable[[dict[str, Any]], bool] | None) -> bool:
        """Whether ``current`` shows every chunk of the lexical table (checked once per
        filter, for tables of at most ``exact_max`` chunks: 5 ms at 10k)."""
        if current is None:
            return True
        seen = self._whole
        if seen is not None and seen[0] is current:
            return seen[1]
        table = self.lexical.chunks
        whole = len(table) <= self.exact_max and all(current(c.metadata) for c in table.values())
        self._whole = (current, whole)
        return whole

    def _shingles_of(self, text: str) -> frozenset[int]:
        """``fusion.shingles`` of a chunk's text, kept (a search compares about 10)."""
        got = self._shingles.get(text)
        if got is None:
            if len(self._shingles) >= _MAX_SHINGLES:
                self._shingles.clear()
            got = self._shingles[text] = shingles(text)
        return got

    def _with_starts(
        self, results: list[Scored], k: int, allowed: Callable[[str], bool]
    ) -> list[Scored]:
        """``results`` where each of the first ``k`` that continues a passage (``continues``:
        a sentence cut by a page break, a list taken up at its 4th item) comes right after
        the passage it continues, the section's previous chunk: the start of the sentence or
        of the list is what answers. That passage is moved up if it is a candidate, else
        added with the signals of the one it precedes (the two are one passage, cut). Only a
        chunk ``allowed`` is added (the version being served, the asked kinds): a refresh in
        progress or killed half-way leaves other versions' chunks in the lexical table."""
        out = list(results)
        i = 0
        while i < min(k, len(out)):
            r = out[i]
            cut = self._continues.get(r.chunk.id)
            if cut is None:
                cut = continues(r.chunk)
            before = self._previous_in_section(r.chunk) if cut else None
            if before is not None and not allowed(before.id):
                before = None
            if before is None or any(o.chunk.id == before.id for o in out[:i]):
                i += 1
                continue
            at = next((j for j, o in enumerate(out) if o.chunk.id == before.id), None)
            moved = out.pop(at) if at is not None else replace(r, chunk=before)
            out.insert(i, moved)  # r is now at i + 1: one step back, not a chain
            i += 2
        return out

    def _previous_in_section(self, chunk: StoredChunk) -> StoredChunk | None:
        """The chunk just before ``chunk`` in its document, if it is of the same section."""
        index = int(chunk.metadata.get("chunk_index", 0))
        sid = chunk.metadata.get("section_id")
        if not sid or index <= 0:
            return None
        earlier = [
            c
            for c in self._section_chunks(chunk)
            if int(c.metadata.get("chunk_index", 0)) == index - 1
            and c.metadata.get("source") == chunk.metadata.get("source")
        ]
        return earlier[0] if earlier else None

    def _with_similarity(self, vector: Sequence[float], results: list[Scored]) -> list[Scored]:
        """``results`` with the cosine similarity to the query of the first ``EVIDENCE_TOP``,
        embedded now as the collection embeds them (with their title). The others keep 0, as
        a BM25-only hit has over a complete index."""
        todo = [i for i, r in enumerate(results[:EVIDENCE_TOP]) if r.dense_rank is None]
        if not todo:
            return results
        texts = [
            embedding_text(str(results[i].chunk.metadata.get("title", "")), results[i].chunk.text)
            for i in todo
        ]
        passages = np.asarray(self.embedder.embed_documents(texts), dtype=np.float64)
        q = np.asarray(vector, dtype=np.float64)
        norms = np.linalg.norm(passages, axis=1) * (np.linalg.norm(q) or 1.0)
        sims = passages @ q / np.where(norms == 0, 1.0, norms)
        out = list(results)
        for i, sim in zip(todo, sims, strict=True):
            out[i] = replace(out[i], dense=float(sim))
        return out

    def _section_chunks(self, chunk: StoredChunk) -> list[StoredChunk]:
        """The chunks of ``chunk``'s section in the lexical table (built once per table)."""
        sid = chunk.metadata.get("section_id")
        if not sid:
            return [chunk]
        table = self.lexical.chunks
        if self._sections_of is not table:
            sections: dict[str, list[StoredChunk]] = {}
            for c in table.values():
                key = c.metadata.get("section_id")
                if key:
                    sections.setdefault(str(key), []).append(c)
            self._sections, self._sections_of = sections, table
        return self._sections.get(str(sid)) or [chunk]

    def _document_chunks(self, chunk: StoredChunk) -> list[StoredChunk]:
        """The chunks of ``chunk``'s document in the lexical table, in reading order (built
        once per table)."""
        table = self.lexical.chunks
        if self._documents_of is not table:
            documents: dict[str, list[StoredChunk]] = {}
            for c in table.values():
                documents.setdefault(str(c.metadata.get("source", "")), []).append(c)
            for chunks in documents.values():
                chunks.sort(key=lambda c: int(c.metadata.get("chunk_index", 0)))
            self._documents, self._documents_of = documents, table
        return self._documents.get(str(chunk.metadata.get("source", ""))) or [chunk]

    def _with_dense_chunks(self, ids: Sequence[str]) -> Mapping[str, StoredChunk]:
        """The lexical table plus dense hits it does not hold yet (written by a refresh that
        runs now or since it was built), read from the collection: a document re-indexed
        during a refresh stays findable before the lexical side is rebuilt."""
        chunks = self.lexical.chunks
        missing = [cid for cid in ids if cid not in chunks]
        if not missing:
            return chunks
        known = self._extra
        extra = {cid: known[cid] for cid in missing if cid in known}
        unknown = [cid for cid in missing if cid not in known]
        if unknown:
            extra.update(self.store.get_chunks(unknown))
        return ChainMap(extra, chunks) if extra else chunks  # no copy of a 100k-entry table


def __getattr__(name: str) -> Any:
    """``AllianceRetriever`` lives in ``retrieval.retriever``: langchain's retriever machinery
    (its tracers, ~0.5-1 s of imports) loads only for whoever asks for a retriever."""
    if name == "AllianceRetriever":
        from assistant.retrieval.retriever import AllianceRetriever

        return AllianceRetriever
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
