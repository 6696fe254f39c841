"""The hybrid search as a langchain retriever (for chains and agents), in its own module: the
retriever machinery of langchain (its tracers, langsmith) costs ~0.5-1 s of imports that a
search, an answer or a refresh never need."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever


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
