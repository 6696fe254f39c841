"""``Assistant``: the one object the CLI, the REST API, the UI and Python users talk to.

from assistant import Assistant, Settings
a = Assistant(Settings(corpus_dir="corpus", index_dir="index"))
a.refresh(); a.search("comment évaluer un partenariat ?"); a.ask("...", history=[])
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chromadb.api import ClientAPI
from langchain_core.embeddings import Embeddings

from assistant.answering.extractive import (
    Answerer,
    chunk_reading,
    reader_version,
    sentence_units,
)
from assistant.answering.llm import make_answerer, stream_answer
from assistant.answering.sentence_cache import ChunkSentences, SentenceCache, sidecar_path
from assistant.errors import AllianceError, ConfigError, IndexNotReadyError
from assistant.indexing.active import chunk_count, read_active, serving_build, settle
from assistant.indexing.build import Build
from assistant.indexing.catalogue import DocumentRecord
from assistant.indexing.early import build_early
from assistant.indexing.embedders import bulk_embedding, embedder_slug, make_embedder
from assistant.indexing.lexical import LexicalIndex
from assistant.indexing.paths import IndexPaths
from assistant.indexing.plan import is_current, plan_refresh
from assistant.indexing.refresh import Progress, refresh
from assistant.indexing.rwlock import ReadWriteLock
from assistant.indexing.store import IndexStore, close_chroma_client, make_chroma_client
from assistant.retrieval.followup import contextualize
from assistant.retrieval.hybrid import (
    MAX_QUERY_CHARS,
    HybridSearcher,
    Mode,
    Retrieval,
)
from assistant.retrieval.rerank import StructureReranker
from assistant.settings import Settings
from assistant.types import Answer, Building, Hit, IndexStats, RefreshReport, RefreshStart

if TYPE_CHECKING:  # langchain's retriever machinery loads only for as_retriever (~0.5-1 s)
    from langchain_core.retrievers import BaseRetriever

log = logging.getLogger(__name__)

_STEP_CHECK_S = 2.0


class Assistant:
    """Refresh, search and ask over one corpus and index. Thread-safe for concurrent reads.

    ``settings`` name the build (embedder and chunking recipe, see ``indexing.build``) that
    refreshes write. Queries go to the collection that is *active* (see ``indexing.active``):
    the same one, except while a new build's collection is being written (another embedder, or
    another chunking), when the previous one keeps answering with its own model.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embeddings | None = None,
        answerer: Answerer | None = None,
        embedder_factory: Callable[[str], Embeddings] = make_embedder,
    ) -> None:
        self.settings = settings
        self._factory = embedder_factory
        self._embedders: dict[str, Embeddings] = {}
        if embedder is not None:
            self._embedders[settings.embedder] = embedder
        self._fixed_answerer = answerer
        self._answerers: dict[str, Answerer] = {}
        self._sentence_caches: dict[str, SentenceCache] = {}
        self._client: ClientAPI | None = None
        self._stores: dict[Build, IndexStore] = {}
        self._searcher: HybridSearcher | None = None
        self._lock = threading.RLock()
        # Searches and refreshes hold it shared, close() exclusive.
        self._gate = ReadWriteLock()
        self._refreshing = 0  # refreshes running in this process: not out of step meanwhile
        self._warming = False  # a warm start is reading the corpus: the search will be lexical
        self._checked_at = 0.0

    # -- wiring (lazy: building an embedder or opening Chroma happens on first use) ----------
    def _embedder_for(self, spec: str) -> Embeddings:
        with self._lock:
            if spec not in self._embedders:
                self._embedders[spec] = self._factory(spec)
            return self._embedders[spec]

    def _sentences_for(self, spec: str) -> SentenceCache:
        """The embedder the answerer embeds sentences with, behind a cache kept on disk
        (``answering.sentence_cache``): a sentence is embedded once, not at every question."""
        with self._lock:
            if spec not in self._sentence_caches:
                path = sidecar_path(self.settings.index_dir, embedder_slug(spec))
                self._sentence_caches[spec] = SentenceCache(
                    self._embedder_for(spec), namespace=spec, path=path
                )
            return self._sentence_caches[spec]

    def _chroma(self) -> ClientAPI:
        """The one Chroma client of this Assistant (re-created after ``close``)."""
        with self._lock:
            if self._client is None:
                self._client = make_chroma_client(self.settings)
            return self._client

    def _store_for(self, build: Build) -> IndexStore:
        with self._lock:
            if build not in self._stores:
                settings = self.settings.replace(embedder=build.embedder)
                client = self._chroma()  # claims an embedded index before a model loads
                embedder = self._embedder_for(build.embedder)
                self._stores[build] = IndexStore(settings, embedder, client, build)
            return self._stores[build]

    def _answerer_for(self, spec: str) -> Answerer:
        with self._lock:
            if self._fixed_answerer is not None:
                return self._fixed_answerer
            if spec not in self._answerers:
                # extractive, wrapped by an LLM answerer when settings.llm_url is set; it embeds
                # sentences with the model that embedded the query
                settings = self.settings.replace(embedder=spec)
                self._answerers[spec] = make_answerer(settings, self._sentences_for(spec))
            return self._answerers[spec]

    @property
    def embedder(self) -> Embeddings:
        """The configured embedder (the one refreshes build with)."""
        return self._embedder_for(self.settings.embedder)

    @property
    def store(self) -> IndexStore:
        """The configured build's index: the one refreshes write."""
        return self._store_for(Build.of(self.settings))

    @property
    def answerer(self) -> Answerer:
        return self._answerer_for(self.serving_embedder())

    def serving_embedder(self) -> str:
        """The embedder whose collection answers queries now (see ``indexing.active``)."""
        return self.serving_build().embedder

    def serving_build(self) -> Build:
        """The build whose collection answers queries now (see ``indexing.active``)."""
        with self._lock:  # a re-open closes the client under this lock too
            return serving_build(self._chroma(), Build.of(self.settings))

    @property
    def serving_store(self) -> IndexStore:
        """The index queries go to: the configured one, or the previous one while the
        configured embedder's collection is being built."""
        return self._store_for(self.serving_build())

    def _get_searcher(self) -> HybridSearcher:
        with self._lock:
            if self._searcher is None:
                self._searcher = self._open_searcher(self.serving_build())
            return self._searcher

    def _follow_other_writers(self) -> None:
        """Pick up a refresh or an embedder switch made by another process on a shared Chroma
        server (a replica's writer): drop the searcher so the next query rebuilds it. An
        embedded index has no other writer: this process owns it (``indexing.owner_lock``)."""
        if not self.settings.chroma_url:
            return
        with self._lock:
            if self._searcher is None or self._refreshing or not self._out_of_step():
                return
            log.info("the index changed (another process refreshed it): reloading")
            self._searcher = None

    def close(self) -> None:
        """Close the Chroma client and the catalogue, and give back the claim on an embedded
        index, once the searches and refresh running now are done. The Assistant re-opens on
        next use."""
        with self._gate.write(), self._lock:
            if self._client is not None:
                close_chroma_client(self.settings, self._client)
            self._client = None
            for store in self._stores.values():
                store.catalogue.close()  # its version probe keeps catalog.sqlite open
            self._stores.clear()
            self._searcher = None
            for answerer in self._answerers.values():  # stops a local model's server
                close = getattr(answerer, "close", None)
                if callable(close):
                    close()
            self._answerers.clear()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_searcher(self, build: Build, lexical: LexicalIndex | None = None) -> HybridSearcher:
        store = self._store_for(build)
        if lexical is None:
            if store.count() == 0:
                raise IndexNotReadyError(
                    "l'index est vide : lancez `alliance refresh` pour le construire"
                )
            lexical = LexicalIndex.open(store)
        s = self.settings
        return HybridSearcher(
            store,
            self._embedder_for(build.embedder),
            lexical,
            StructureReranker(),
            candidates=s.candidates,
            dense_weight=s.dense_weight,
            bm25_weight=s.bm25_weight,
            rrf_k=s.rrf_k,
        )

    def _out_of_step(self) -> bool:
        """Whether another process (a replica's writer) refreshed the collection or switched
        the answering one since our searcher was built. Checked at most once per
        ``_STEP_CHECK_S``: two metadata reads."""
        now = time.monotonic()
        if now - self._checked_at < _STEP_CHECK_S:
            return False
        self._checked_at = now
        searcher = self._searcher
        assert searcher is not None
        if self.serving_build() != searcher.store.build:
            return True
        return searcher.store.fingerprint() != searcher.lexical.fingerprint

    # -- a first build answers at once (see ``indexing.early``) -------------------------------
    def first_build(self) -> bool:
        """Whether the configured build was never complete and nothing else answers: its
        collection is empty, or a first build was killed half-way (no collection was ever
        switched to and that refresh's pending mark is still there)."""
        with self._gate.read():
            target = Build.of(self.settings)
            if self.serving_build() != target:
                return False  # another build's collection answers meanwhile
            store = self.store
            if store.count() == 0:
                return True
            pending = IndexPaths(self.settings.index_dir).pending(store.slug)
            return read_active(store.client) is None and pending.exists()

    def answers_during_refresh(self) -> bool:
        """Whether queries are answered while the next refresh runs, with no warm start: a
        stale complete index does, and so does the previous build's collection while the
        configured one is written. A first build does not: ``warm_start`` answers for it."""
        if self.first_build():
            return False
        try:
            return self.stats().chunks > 0
        except AllianceError:
            return False

    def warm_start(self) -> bool:
        """On a first build, answer at once from the early index (BM25 over the corpus as it
        reads now) until a refresh completes the build and the searcher switches to hybrid (no
        restart). Call it before that refresh; it costs reading the corpus (seconds), no
        embedding. Returns whether queries are answered during the refresh: by the early
        index or, when the corpus cannot be read early (the refresh will say why), by the
        chunks a first build killed half-way wrote."""
        if not self.first_build():
            with self._lock:
                self._warming = False  # announced (``prepare_refresh``) but not needed
            return False
        with self._lock:
            self._warming = True
        try:
            lexical = build_early(self.settings)
        except AllianceError as exc:
            log.warning("no early index: %s", exc)
            return self.store.count() > 0
        finally:
            with self._lock:
                self._warming = False
        if not len(lexical):
            return self.store.count() > 0
        with self._gate.read():
            searcher = self._open_searcher(self.serving_build(), lexical)
            with self._lock:
                if self._searcher is None or self._searcher.mode == "lexical":
                    self._searcher = searcher
        return True  # the early index answers, or a refresh completed meanwhile: hybrid

    def prepare_refresh(self) -> RefreshStart:
        """Decide how a refresh about to run in another thread goes (see ``RefreshStart``):
        ``warm`` for a first build, whose thread then calls ``warm_start`` and ``refresh``.
        From a ``warm`` answer on the mode says lexical, not only once that thread gets to
        ``warm_start``, so /api/health never says hybrid for a first build that has nothing
        hybrid to search."""
        if not self.is_stale():
            return "current"
        if self.answers_during_refresh():
            return "answering"
        with self._lock:
            self._warming = True
        return "warm"

    def search_mode(self) -> Mode:
        """``lexical`` while a warm start reads the corpus of a first build and while its
        early index answers (``warm_start``), ``hybrid`` otherwise. The one answer to "how are
        queries searched now" (the page's notice, ``/api/health``, ``alliance serve``)."""
        with self._lock:
            searcher, warming = self._searcher, self._warming
        if searcher is not None:
            return searcher.mode
        return "lexical" if warming else "hybrid"

    def _early(self) -> LexicalIndex | None:
        """The early index, while it answers."""
        with self._lock:
            searcher = self._searcher
        return searcher.lexical if searcher is not None and searcher.mode == "lexical" else None

    # -- public API --------------------------------------------------------------------------
    def refresh(self, *, dry_run: bool = False, progress: Progress | None = None) -> RefreshReport:
        """Index what changed in the corpus (see ``indexing.refresh``); when the configured
        embedder's collection is complete, it becomes the one that answers."""
        with self._gate.read():  # shared with searches; close() waits for it
            with self._lock:
                self._refreshing += 1
            try:
                return self._refresh(dry_run=dry_run, progress=progress)
            finally:
                with self._lock:
                    self._refreshing -= 1

    def _refresh(self, *, dry_run: bool, progress: Progress | None) -> RefreshReport:
        target = Build.of(self.settings)
        store = self.store

        def finish(report: RefreshReport) -> None:
            changed = any(d.status != "unchanged" for d in report.documents)
            # Nothing changed: reuse the persisted BM25 side if it matches (a rebuild takes 36 s
            # at 100k chunks); otherwise rebuild it from the collection.
            lexical = LexicalIndex.build(store) if changed else LexicalIndex.open(store)
            active, switched_from = settle(store.client, target)
            report.active_embedder = active.label
            report.switched_from = switched_from.label if switched_from is not None else ""
            if active == target:
                searcher = self._open_searcher(target, lexical)
                with self._lock:
                    self._searcher = searcher

        serving = self.serving_build()
        carry = self._store_for(serving) if serving != target else None
        # the answerer's sentence vectors, embedded with the chunks (not at each question)
        sentences = ChunkSentences(
            self._sentences_for(target.embedder),
            store.collection_name,
            sentence_units,
            reading=chunk_reading,
            reader=reader_version(),
        )
        with bulk_embedding():  # questions asked meanwhile embed first (``EngineLock``)
            report = refresh(
                self.settings,
                store,
                dry_run=dry_run,
                progress=progress,
                finish=finish,
                carry=carry,
                sentences=sentences,
            )
        if dry_run:
            report.active_embedder = self.serving_build().label
        return report

    def retrieve(
        self, query: str, k: int | None = None, kinds: Sequence[str] | None = None
    ) -> Retrieval:
        return self._retrieve_with(query, kinds, k)[0]

    def _retrieve_with(
        self, query: str, kinds: Sequence[str] | None, k: int | None = None
    ) -> tuple[Retrieval, Answerer]:
        """A retrieval and the answerer that goes with its query vector's model."""
        self._follow_other_writers()
        with self._gate.read():
            searcher = self._get_searcher()
            kinds = list(dict.fromkeys(kinds)) if kinds else kinds  # a kind once, not 40,000 times
            retrieval = searcher.retrieve(query, self.settings.k if k is None else k, kinds)
        return retrieval, self._answerer_for(searcher.store.build.embedder)

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
        # the question's own length is what is limited, not the history's (issue 16, row 9)
        query = contextualize(question, turns, max_chars=MAX_QUERY_CHARS)
        retrieval, answerer = self._retrieve_with(query, kinds)
        # the answerer reads the standalone question (a follow-up rewritten with its subject)
        return stream_answer(answerer, query, retrieval, turns)

    def as_retriever(self, k: int = 5, kinds: Sequence[str] | None = None) -> BaseRetriever:
        from assistant.retrieval.retriever import AllianceRetriever

        self._get_searcher()  # fails now, not at the first query, on an empty index
        return AllianceRetriever(searcher=self, k=k, kinds=list(kinds) if kinds else None)

    # -- state -----------------------------------------------------------------------------
    def answerer_info(self) -> dict[str, Any]:
        """Which answerer is active: ``{"kind": "extractive" | "llm" | "local-llm", ...}``."""
        settings = self.settings
        if self._fixed_answerer is None and not self._answerers:
            kind = "local-llm" if settings.llm else "llm" if settings.llm_url else "extractive"
            return {"kind": kind}  # without building it: health must not load a model
        with self._lock:
            answerer = self._fixed_answerer or next(iter(self._answerers.values()))
        describe = getattr(answerer, "describe", None)
        return describe() if callable(describe) else {"kind": "extractive"}

    def stats(self) -> IndexStats:
        """What answers now: documents and chunks of the serving collection, and the
        configured embedder's collection when it is still being built."""
        with self._gate.read():
            return self._stats()

    def _stats(self) -> IndexStats:
        serving = self.serving_build()
        target = Build.of(self.settings)
        store = self._store_for(serving)
        docs = self._catalogue()
        building = None
        if serving != target:
            # counted without opening it: opening creates it, and stats() must not write
            building = Building(target.label, chunk_count(store.client, target))
        early = self._early()
        return IndexStats(
            documents=sum(1 for d in docs.values() if d.status in ("indexed", "warning")),
            chunks=len(early) if early is not None else store.count(),
            embedder=serving.label,
            collection=store.collection_name,
            building=building,
        )

    def documents(self) -> list[DocumentRecord]:
        """The catalogue of the serving collection (what citations come from)."""
        with self._gate.read():
            return list(self._catalogue().values())

    def indexed_sources(self) -> set[str]:
        """Documents a citation may point to: those of the serving collection, not failed."""
        with self._gate.read():
            docs = self._catalogue()
        return {s for s, d in docs.items() if d.status != "failed"}

    def _catalogue(self) -> dict[str, DocumentRecord]:
        """The serving collection's documents: its local catalogue or, on a replica of a
        shared Chroma server (the catalogue lives with the writer), what its chunks say; while
        the early index of a first build answers, the documents it holds."""
        early = self._early()
        if early is not None:
            return dict(early.documents)
        docs = self.serving_store.documents()
        if docs or not self.settings.chroma_url:
            return docs
        try:
            searcher = self._get_searcher()
        except IndexNotReadyError:
            return {}
        return searcher.lexical.documents

    def is_stale(self) -> bool:
        """True when the configured embedder's index is empty or behind the corpus: a file
        added, changed or removed, a web page listed but never fetched, or a URL no longer
        listed. (Whether a listed page changed on its site is only known by fetching it: a
        refresh does that.)"""
        with self._gate.read():
            return self._is_stale()

    def _is_stale(self) -> bool:
        store = self.store
        if store.count() == 0:
            return True
        if self.serving_build() != store.build:
            return True
        known = store.documents()
        try:  # the refresh's own planner, without fetching web pages
            plan = plan_refresh(self.settings, known, fetch=False)
        except ConfigError:
            return True  # a refresh will say what is wrong with sources.toml
        return not is_current(plan, known)
