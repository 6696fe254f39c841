"""What a search returns: ranked candidates with every signal, and the query they answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.indexing.store import StoredChunk
from assistant.types import Hit

EVIDENCE_TOP = 3
"""How many of the first passages ``Retrieval.evidence_strength`` reads by default."""


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
    # The chunks of a chunk's section (``section_id`` metadata), so the answerer can read the
    # section around a retrieved chunk; None when the searcher cannot tell.
    section_chunks: Callable[[StoredChunk], list[StoredChunk]] | None = None
    # The chunks of a chunk's document, in order, so the answerer can read its outline (steps
    # written as headings, « Étape 1 : … »); None when the searcher cannot tell.
    document_chunks: Callable[[StoredChunk], list[StoredChunk]] | None = None

    @property
    def hits(self) -> list[Hit]:
        return [r.to_hit() for r in self.results]

    def evidence_strength(self, top: int = EVIDENCE_TOP) -> float:
        """How close the best of the ``top`` passages is to the query (cosine similarity of
        the dense side, 0 with no passage): what the decline rule weighs, whatever the order
        a reranker gave them."""
        return max((r.dense for r in self.results[:top]), default=0.0)
