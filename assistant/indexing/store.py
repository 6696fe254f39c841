"""The persisted index for one build: a Chroma collection and its catalogue of documents
(``indexing.catalogue``).

Each build (an embedder and a chunking recipe, see ``indexing.build``) gets its own collection
(``alliance-<embedder>[-<recipe hash>]``) and catalogue rows, so vectors of two models
or two chunkings are never mixed: changing either means building a new collection.
Chroma never embeds by itself here: our embedder is injected, its default one (which downloads a
model) is never used.
"""

from __future__ import annotations

import logging
import os
import threading
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.errors import ConfigError
from assistant.indexing import owner_lock as ownership
from assistant.indexing.build import Build, embedding_text
from assistant.indexing.catalogue import Catalogue, DocumentRecord
from assistant.indexing.paths import IndexPaths
from assistant.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored: id, text and metadata (source, title, kind, page?, sha256...)."""

    id: str
    text: str
    metadata: dict[str, Any]


def documents_from_chunks(chunks: Iterable[StoredChunk]) -> dict[str, DocumentRecord]:
    """A catalogue read off stored chunks (source, title, kind, highest page, chunk count):
    what a replica of a shared Chroma server knows, its writer's catalogue living elsewhere."""
    by: dict[str, DocumentRecord] = {}
    for c in chunks:
        meta = c.metadata
        source = str(meta.get("source", ""))
        record = by.get(source)
        if record is None:
            record = by[source] = DocumentRecord(
                source=source,
                sha256=str(meta.get("sha256", "")),
                title=str(meta.get("title", "")),
                kind=str(meta.get("kind", "")),
                pages=None,
                chunks=0,
                status="indexed",
                reason="",
                indexed_at=0.0,
            )
        record.chunks += 1
        page = meta.get("page")
        if isinstance(page, int):
            record.pages = max(record.pages or 0, page)
    return dict(sorted(by.items()))


class Store(Protocol):
    """What search needs of a build's index (``IndexStore`` is the Chroma one): the read side.
    A store for another vector database implements this and passes the store contract suite
    (``tests/test_store_contract.py``)."""

    build: Build

    def count(self) -> int: ...

    def query(
        self, embedding: Sequence[float], n: int, kinds: Sequence[str] | None = None
    ) -> list[tuple[str, float]]: ...

    def get_chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]: ...

    def all_chunks(self, batch: int = 2000) -> list[StoredChunk]: ...

    def ids(self) -> list[str]: ...

    def unit_vectors(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray]: ...

    def documents(self) -> dict[str, DocumentRecord]: ...

    def chunk_filter(self) -> Callable[[dict[str, Any]], bool] | None: ...

    def fingerprint(self) -> str: ...


class TitledChroma(Chroma):
    """langchain's Chroma, but chunks are embedded with their document title (see
    ``embedding_text``) while the stored text stays the exact passage we cite."""

    def __init__(self, *, target: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._target = target

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        if not documents:
            return []
        ids = [str(i) for i in kwargs.get("ids") or [d.id for d in documents]]
        if self.embeddings is None:
            raise ConfigError("no embedder configured for the index")
        vectors = self.embeddings.embed_documents(
            [embedding_text(str(d.metadata.get("title", "")), d.page_content) for d in documents]
        )
        self._target.upsert(
            ids=ids,
            embeddings=np.asarray(vectors, dtype=np.float32),
            documents=[d.page_content for d in documents],
            metadatas=[d.metadata for d in documents],
        )
        return ids


# How wide HNSW searches. Chroma's default (100) missed exact neighbours: 4 of the 5,100 top-30
# lists of the eval questions on the shipped corpus, enough to move strict MRR from 0.770 to
# 0.763 between two builds of the same corpus. 200 finds them all there.
EF_SEARCH = 200


def _widen_search(collection: Any) -> None:
    """Raise ``ef_search`` on a collection created before ``EF_SEARCH`` (read first: the
    write happens once)."""
    try:
        # the raw JSON: the parsed `configuration` warns about our (legacy) embedding function
        hnsw = (collection.configuration_json or {}).get("hnsw") or {}
        current = int(hnsw.get("ef_search") or 0)
    except (AttributeError, TypeError, ValueError):
        return
    if current < EF_SEARCH:
        collection.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
        log.info("%s: HNSW ef_search %d -> %d", collection.name, current, EF_SEARCH)


def make_chroma_client(settings: Settings) -> chromadb.api.ClientAPI:
    """Embedded PersistentClient under ``index_dir/chroma`` (claimed for this process, see
    ``assistant.indexing.owner_lock``), or an HttpClient for a server URL."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        if url.scheme not in {"http", "https"} or not url.hostname:
            raise ConfigError(
                f"chroma_url must look like http://host:port, got {settings.chroma_url!r}"
            )
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    path = IndexPaths(settings.index_dir).chroma
    path.mkdir(parents=True, exist_ok=True)
    ownership.claim(settings.index_dir)  # IndexBusyError before any Chroma file is touched
    try:
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except BaseException:
        ownership.release(settings.index_dir)
        raise


def close_chroma_client(settings: Settings, client: chromadb.api.ClientAPI) -> None:
    """Close a client made by ``make_chroma_client`` and give back its claim on the index."""
    close = getattr(client, "close", None)  # on chromadb's Client, not its ClientAPI protocol
    if close is not None:
        close()
    if not settings.chroma_url:
        ownership.release(settings.index_dir)


class IndexStore:
    """Vector collection + document catalogue for one build (by default the
    one ``settings`` asks for; an older build while it still answers)."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embeddings,
        client: chromadb.api.ClientAPI | None = None,
        build: Build | None = None,
    ) -> None:
        self.settings = settings
        self.build = build if build is not None else Build.of(settings)
        self.embedder_spec = self.build.embedder
        self.slug = self.build.slug
        self.collection_name = self.build.collection
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        self.client = client if client is not None else make_chroma_client(settings)
        self.collection = self.client.get_or_create_collection(
            self.collection_name,
            metadata=self._meta(),
            configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}},
            embedding_function=None,
        )
        _widen_search(self.collection)
        self.vectorstore = TitledChroma(
            target=self.collection,
            collection_name=self.collection_name,
            embedding_function=embedder,
            client=self.client,
        )
        self.paths = IndexPaths(settings.index_dir)
        self.catalogue = Catalogue(self.paths.catalogue, self.collection_name)
        empty: np.ndarray = np.zeros((0, 0), dtype=np.float32)
        self._unit_vectors: tuple[list[str], dict[str, int], np.ndarray] = ([], {}, empty)

    @property
    def lexical_dir(self) -> Path:
        return self.paths.lexical(self.slug)

    # -- catalogue (see ``indexing.catalogue``) -------------------------------------------
    def documents(self) -> dict[str, DocumentRecord]:
        return self.catalogue.documents()

    def save_document(self, record: DocumentRecord) -> None:
        self.catalogue.save(record)

    def forget_document(self, source: str) -> None:
        self.catalogue.forget(source)

    def save_documents(self, records: Iterable[DocumentRecord], forget: Iterable[str] = ()) -> None:
        """Save ``records`` and forget ``forget`` in one catalogue write (see ``save_many``)."""
        self.catalogue.save_many(records, forget)

    def chunk_filter(self) -> Callable[[dict[str, Any]], bool] | None:
        """True for chunks of a document's indexed version (see ``catalogue.chunk_filter``):
        the same object while the catalogue is unchanged."""
        return self.catalogue.chunk_filter()

    # -- chunks ----------------------------------------------------------------------------
    def chunk_ids_for(self, source: str) -> list[str]:
        """Ids of every stored chunk of ``source`` (any version), read off chunk metadata."""
        where: Any = {"source": source}
        return list(self.collection.get(where=where, include=[])["ids"])

    def delete_source(self, source: str) -> int:
        """Remove every chunk of ``source`` from the collection."""
        ids = self.chunk_ids_for(source)
        for start in range(0, len(ids), 500):
            self.collection.delete(ids=ids[start : start + 500])
        return len(ids)

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        """Refresh metadata of chunks kept as they were (e.g. a new file hash), without
        re-embedding them."""
        for start in range(0, len(ids), 500):
            self.collection.update(
                ids=list(ids[start : start + 500]), metadatas=list(metadatas[start : start + 500])
            )

    def fingerprint(self) -> str:
        """The fingerprint of the collection's chunk ids as of the last refresh (any process)."""
        meta = self.client.get_collection(self.collection_name).metadata or {}
        return str(meta.get("fingerprint", ""))

    def _meta(self, **more: str) -> dict[str, Any]:
        return {"embedder": self.build.embedder, "recipe": self.build.recipe, **more}

    def set_fingerprint(self, fp: str) -> None:
        self.collection.modify(metadata=self._meta(fingerprint=fp))

    def count(self) -> int:
        return int(self.collection.count())

    def get_chunks(self, ids: Sequence[str]) -> dict[str, StoredChunk]:
        """The stored chunks among ``ids`` (missing ones are left out)."""
        if not ids:
            return {}
        got = self.collection.get(ids=list(ids), include=["documents", "metadatas"])
        docs = got.get("documents") or []
        metas = got.get("metadatas") or []
        return {
            cid: StoredChunk(cid, text or "", dict(meta or {}))
            for cid, text, meta in zip(got["ids"], docs, metas, strict=True)
        }

    def all_chunks(self, batch: int = 2000) -> list[StoredChunk]:
        """Every chunk with text and metadata, read in pages (works on a server too)."""
        total = self.count()
        out: list[StoredChunk] = []
        for offset in range(0, total, batch):
            got = self.collection.get(
                include=["documents", "metadatas"], limit=batch, offset=offset
            )
            docs = got.get("documents") or []
            metas = got.get("metadatas") or []
            for cid, text, meta in zip(got["ids"], docs, metas, strict=True):
                out.append(StoredChunk(cid, text or "", dict(meta or {})))
        return out

    def ids(self, batch: int = 5000) -> list[str]:
        """Every chunk id in the collection (50 ms at 10k chunks: no text, no metadata)."""
        out: list[str] = []
        for offset in range(0, self.count(), batch):
            out += self.collection.get(include=[], limit=batch, offset=offset)["ids"]
        return out

    def unit_vectors(self, ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The stored vectors of ``ids`` scaled to length 1 (the collection's cosine space), as
        ``(ids found, float32 matrix, one row each)``: what an exact scan needs
        (``retrieval.exact``). The last answer is kept, in memory and in ``vectors-<build>.npz``
        (a cache of this collection's vectors, read at the first call), so only vectors not
        seen before are read from the collection (all of them took 0.74 s at 10k chunks,
        20 MB). A chunk id's vector never changes within a collection: ids carry the
        document version, the collection its embedder."""
        if not self._unit_vectors[0]:
            self._unit_vectors = self._read_vectors()
        known_ids, known_rows, known = self._unit_vectors
        wanted = list(dict.fromkeys(ids))
        new = [cid for cid in wanted if cid not in known_rows]
        fetched: dict[str, np.ndarray] = {}
        for start in range(0, len(new), 500):
            got = self.collection.get(ids=new[start : start + 500], include=["embeddings"])
            vectors = got.get("embeddings")
            if vectors is None or not len(got["ids"]):
                continue
            matrix = np.asarray(vectors, dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix /= np.where(norms == 0, 1.0, norms)
            fetched.update(zip(got["ids"], matrix, strict=True))
        found = [cid for cid in wanted if cid in known_rows or cid in fetched]
        if not fetched and found == known_ids:
            return found, known  # the copy as it is (read from the file): no second 20 MB
        dim = known.shape[1] if len(known_ids) else next(iter(fetched.values()), np.zeros(0)).size
        out = np.empty((len(found), dim), dtype=np.float32)
        kept = [(row, known_rows[cid]) for row, cid in enumerate(found) if cid in known_rows]
        if kept:
            rows, at = np.asarray(kept).T
            out[rows] = known[at]
        added = [(row, cid) for row, cid in enumerate(found) if cid not in known_rows]
        if added:
            out[[row for row, _ in added]] = np.stack([fetched[cid] for _, cid in added])
        self._unit_vectors = (found, {cid: i for i, cid in enumerate(found)}, out)
        if fetched:
            self._write_vectors(found, out)
        return found, out

    def _read_vectors(self) -> tuple[list[str], dict[str, int], np.ndarray]:
        """The cached copy of this collection's vectors, or nothing (no file, another
        collection of the same name, unreadable)."""
        empty: tuple[list[str], dict[str, int], np.ndarray] = ([], {}, np.zeros((0, 0), np.float32))
        try:
            with np.load(self.paths.vectors(self.slug), allow_pickle=False) as data:
                if str(data["collection"]) != str(self.collection.id):
                    return empty
                ids = [str(i) for i in data["ids"].tolist()]
                matrix = np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return empty
        if matrix.ndim != 2 or len(matrix) != len(ids):
            return empty
        return ids, {cid: i for i, cid in enumerate(ids)}, matrix

    def _write_vectors(self, ids: list[str], matrix: np.ndarray) -> None:
        """Keep ``ids``' vectors in the cache file (written aside, then renamed: a reader
        never sees half a file); only a cache, so failing to write it is only logged."""
        path = self.paths.vectors(self.slug)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            with tmp.open("wb") as fh:
                np.savez(
                    fh,
                    collection=np.asarray(str(self.collection.id)),
                    ids=np.asarray(ids, dtype=str),
                    vectors=matrix,
                )
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not keep the vectors' copy in %s: %s", path, exc)
            tmp.unlink(missing_ok=True)

    def query(
        self, embedding: Sequence[float], n: int, kinds: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunks as (id, cosine similarity), best first. (No count() first: Chroma caps
        ``n`` itself, and at 100k chunks that extra call was 39% of the query time.)"""
        where: dict[str, Any] | None = None
        if kinds:
            where = {"kind": {"$in": list(kinds)}}
        res = self.collection.query(
            query_embeddings=np.asarray([embedding], dtype=np.float32),
            n_results=n,
            where=where,
            include=["distances"],
        )
        ids = res["ids"][0]
        dists = (res.get("distances") or [[]])[0]
        return [(cid, 1.0 - float(d)) for cid, d in zip(ids, dists, strict=True)]
