"""The rerank stage: reorder the fused candidates before the answerer sees them.

A reranker (a cross-encoder, an LLM judge, business rules) implements ``Reranker`` and is given
to ``HybridSearcher``; it may reorder or drop candidates, never invent them, and should keep
each ``Scored``'s signals as they are (the decline rule reads ``Retrieval.evidence_strength``).
The default keeps the fused order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from assistant.retrieval.results import Scored


class Reranker(Protocol):
    def rerank(self, query: str, results: Sequence[Scored]) -> list[Scored]:
        """``results`` (best first, after fusion and near-duplicate collapse), reordered."""
        ...


class KeepOrder:
    """The identity reranker: the fused order is the final one."""

    def rerank(self, query: str, results: Sequence[Scored]) -> list[Scored]:
        return list(results)


KEEP_ORDER = KeepOrder()
