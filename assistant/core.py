"""``Assistant``: the one object the CLI, the REST API, the UI and Python users talk to.

from assistant import Assistant, Settings
a = Assistant(Settings(corpus_dir="corpus", index_dir="index"))
a.refresh(); a.search("comment évaluer un partenariat ?"); a.ask("...", history=[])
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever

from assistant.answering import Answerer
from assistant.embedders import make_embedder
from assistant.errors import IndexNotReadyError
from assistant.followup import contextualize
from assistant.indexer import Progress, file_sha256, refresh
from assistant.lexical import LexicalIndex
from assistant.llm import make_answerer, stream_answer
from assistant.loaders import discover
from assistant.retrieval import AllianceRetriever, HybridSearcher, Retrieval
from assistant.settings import Settings
from assistant.store import IndexStore
from assistant.types import Answer, Hit, RefreshReport

log = logging.getLogger(__name__)

_STEP_CHECK_S = 2.0


class Assistant:
    """Refresh, search and ask over one corpus and index. Thread-safe for concurrent reads."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embeddings | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._answerer = answerer
        self._store: IndexStore | None = None
        self._searcher: HybridSearcher | None = None
        self._lock = threading.RLock()
        self._checked_at = 0.0

    # -- wiring (lazy: building the embedder or opening Chroma happens on first use) --------
    @property
    def embedder(self) -> Embeddings:
        with self._lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings.embedder)
            return self._embedder

    @property
    def store(self) -> IndexStore:
        with self._lock:
            if self._store is None:
                self._store = IndexStore(self.settings, self.embedder)
            return self._store

    @property
    def answerer(self) -> Answerer:
        with self._lock:
            if self._answerer is None:
                # extractive, wrapped by an LLM answerer when settings.llm_url is set
                self._answerer = make_answerer(self.settings, self.embedder)
            return self._answerer

    def _get_searcher(self) -> HybridSearcher:
        with self._lock:
            if self._searcher is not None and self._out_of_step():
                log.info("the collection changed (another process refreshed it): reloading")
                self._searcher = None
            if self._searcher is None:
                if self.store.count() == 0:
                    raise IndexNotReadyError(
                        "l'index est vide : lancez `alliance refresh` pour le construire"
                    )
                lexical = LexicalIndex.open(self.store)
                self._searcher = HybridSearcher(self.settings, self.store, self.embedder, lexical)
            return self._searcher

    def _out_of_step(self) -> bool:
        """Whether another process (a replica's writer) refreshed the collection since our
        lexical side was built. Checked at most once per ``_STEP_CHECK_S``: one metadata read."""
        now = time.monotonic()
        if now - self._checked_at < _STEP_CHECK_S:
            return False
        self._checked_at = now
        assert self._searcher is not None
        return self.store.fingerprint() != self._searcher.lexical.fingerprint

    # -- public API --------------------------------------------------------------------------
    def refresh(self, *, dry_run: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Index what changed in the corpus; see ``assistant.indexer``."""
        report = refresh(self.settings, self.store, dry_run=dry_run, progress=progress)
        if not dry_run:
            changed = any(d.status != "unchanged" for d in report.documents)
            # Nothing changed: reuse the persisted BM25 side if it matches (a rebuild takes 36 s
            # at 100k chunks); otherwise rebuild it from the collection.
            lexical = LexicalIndex.build(self.store) if changed else LexicalIndex.open(self.store)
            with self._lock:
                self._searcher = HybridSearcher(self.settings, self.store, self.embedder, lexical)
        return report

    def retrieve(
        self, query: str, k: int | None = None, kinds: Sequence[str] | None = None
    ) -> Retrieval:
        return self._get_searcher().retrieve(query, self.settings.k if k is None else k, kinds)

    def search(
        self, query: str, k: int | None = None, kinds: Sequence[str] | None = None
    ) -> list[Hit]:
        """The k best chunks for ``query`` (hybrid dense + BM25), optionally of some kinds."""
        return self.retrieve(query, k, kinds).hits

    def ask(
        self,
        question: str,
        history: Sequence[Mapping[str, str]] | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Answer:
        """A cited answer; follow-ups are completed from ``history`` before retrieval."""
        final: Answer | None = None
        for part in self.ask_stream(question, history, kinds):
            if isinstance(part, Answer):
                final = part
        assert final is not None  # every stream ends with its Answer
        return final

    def ask_stream(
        self,
        question: str,
        history: Sequence[Mapping[str, str]] | None = None,
        kinds: Sequence[str] | None = None,
    ) -> Iterator[str | Answer]:
        """Text pieces as an LLM writes them (none for extractive answers), then the final,
        citation-checked ``Answer``. Retrieval runs before the first item, so invalid queries
        raise here, not mid-stream."""
        turns = list(history or [])
        query = contextualize(question, turns)
        retrieval = self.retrieve(query, self.settings.k, kinds)
        return stream_answer(self.answerer, question, retrieval, turns)

    def as_retriever(self, k: int = 5, kinds: Sequence[str] | None = None) -> BaseRetriever:
        return AllianceRetriever(
            searcher=self._get_searcher(), k=k, kinds=list(kinds) if kinds else None
        )

    # -- state -----------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        docs = self.store.documents()
        return {
            "documents": sum(1 for d in docs.values() if d.status != "failed"),
            "chunks": self.store.count(),
            "embedder": self.settings.embedder,
            "collection": self.store.collection_name,
        }

    def documents(self) -> list[dict[str, Any]]:
        return [dict(vars(d)) for d in self.store.documents().values()]

    def is_stale(self) -> bool:
        """True when the index is empty or a corpus file was added, changed or removed."""
        known = self.store.documents()
        if self.store.count() == 0:
            return True
        corpus = self.settings.corpus_dir
        paths = discover(corpus) if corpus.is_dir() else []
        current = {p.relative_to(corpus).as_posix(): p for p in paths}
        if set(current) != set(known):
            return True
        return any(file_sha256(p) != known[s].sha256 for s, p in current.items())
