"""Sentence vectors embedded once: a cache in front of the embedder the answerer uses.

Composing an extractive answer embeds the most promising sentences of the top passages; that
was 92-97 % of an answer's time. The same sentences come back across questions, processes and
restarts (they are the corpus's own), so their vectors are kept:

- in memory, an LRU bounded in entries, shared by every answerer of one ``Assistant``;
- on disk, in ``<index_dir>/sentences-<embedder>.sqlite``, shared by the processes that serve
  the same index and kept across restarts.

A refresh fills the sidecar ahead of questions: ``ChunkSentences`` (the refresh's
``indexing.plan.SentenceWarmer``) embeds the quotable sentences of every chunk it writes, before
the catalogue switches to them, and records which chunk holds which sentence; when chunks are
deleted, the vectors no other chunk holds are forgotten. So answering a question on a refreshed
index embeds nothing but the question (ask costs about a search). It stores each sentence's
content words too (``text.french.content_words``, tagged with ``TOKENIZER_VERSION``): in a fresh
process, tokenizing and stemming the ~80 sentences an answer reads was most of composing it.
A sidecar written before the words were kept has its chunk records dropped once, so the next
refresh adds the words (the vectors are there: nothing is embedded again).

Keys are a hash of the embedder spec and the exact text: a sentence edited in the corpus is a
new key, a vector of another model is never returned. Queries are not cached (they go to the
embedder unchanged). The cache is an ``Embeddings``, so the answerer's logic does not change.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence, Set
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.indexing.paths import IndexPaths
from assistant.text.french import TOKENIZER_VERSION, content_words

log = logging.getLogger(__name__)

DEFAULT_MEMORY_ITEMS = 50_000  # 384 floats each: ~77 MB at most for e5-small
_SQLITE_VARS = 500  # keys per SELECT ... IN (...)


def _select_in(
    db: sqlite3.Connection, query: str, params: Sequence[Any], keys: Sequence[Any]
) -> list[Any]:
    """The rows of ``query`` (its ``{marks}`` the placeholders of an ``IN`` list) for every
    key of ``keys``, asked ``_SQLITE_VARS`` at a time (SQLite caps the variables a statement
    takes); ``params`` fill the placeholders before the list."""
    rows: list[Any] = []
    for start in range(0, len(keys), _SQLITE_VARS):
        part = list(keys[start : start + _SQLITE_VARS])
        marks = ",".join("?" * len(part))
        rows += db.execute(query.format(marks=marks), [*params, *part]).fetchall()
    return rows


def sidecar_path(index_dir: Path, slug: str) -> Path:
    return IndexPaths(index_dir).sentences(slug)


class SentenceCache(Embeddings):
    """``embed_documents`` through a memory LRU and an optional SQLite sidecar."""

    def __init__(
        self,
        inner: Embeddings,
        *,
        namespace: str,
        path: Path | None = None,
        memory_items: int = DEFAULT_MEMORY_ITEMS,
        batch_size: int = 32,
    ) -> None:
        self.inner = inner
        self.namespace = namespace
        self.path = path
        self.memory_items = max(1, memory_items)
        self.batch_size = batch_size
        self._memory: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._readers = threading.local()  # one read connection per thread (``_reader``)
        self.hits = 0
        self.misses = 0
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                db = self._db()
                try:
                    with db:
                        db.execute(
                            "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB)"
                        )
                        # which chunk (of which collection) holds which sentence: what a
                        # deleted chunk lets go of
                        db.execute(
                            "CREATE TABLE IF NOT EXISTS holders (scope TEXT, chunk TEXT, "
                            "key BLOB, PRIMARY KEY (scope, chunk, key))"
                        )
                        db.execute("CREATE INDEX IF NOT EXISTS holders_key ON holders (key)")
                        had_words = db.execute(
                            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'words'"
                        ).fetchone()
                        # each sentence's content words (``content_words``, as the tokenizer
                        # of ``tokenizer`` reads them): what the answerer's lexical signal needs
                        db.execute(
                            "CREATE TABLE IF NOT EXISTS words "
                            "(key BLOB PRIMARY KEY, tokenizer TEXT, stems TEXT)"
                        )
                        # what the answerer reads of each chunk (``extractive.chunk_reading``,
                        # JSON), for the code version ``reader`` (``extractive.reader_version``)
                        db.execute(
                            "CREATE TABLE IF NOT EXISTS readings (key BLOB PRIMARY KEY, "
                            "scope TEXT, chunk TEXT, reader TEXT, data TEXT)"
                        )
                        db.execute(
                            "CREATE INDEX IF NOT EXISTS readings_chunk ON readings (scope, chunk)"
                        )
                        if not had_words:
                            # a sidecar from before the words were kept: its chunks count as
                            # never warmed, so the next refresh adds their words (their
                            # vectors are in: nothing is embedded again)
                            db.execute("DELETE FROM holders")
                finally:
                    db.close()
            except (OSError, sqlite3.Error) as exc:  # read-only index: memory only
                log.warning("sentence cache %s unusable (%s): memory only", path, exc)
                self.path = None

    # -- Embeddings ------------------------------------------------------------------------
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v.tolist() for v in self.vectors(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    # -- the cache -------------------------------------------------------------------------
    def key(self, text: str) -> bytes:
        return hashlib.blake2b(f"{self.namespace}\0{text}".encode(), digest_size=16).digest()

    def vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The vector of each text (float32), embedding only those never seen."""
        keys = [self.key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for k in keys:
                v = self._memory.get(k)
                if v is not None:
                    self._memory.move_to_end(k)
                    found[k] = v
        wanted = [k for k in dict.fromkeys(keys) if k not in found]
        if wanted and self.path is not None:
            found.update(self._read(wanted))
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        fresh: dict[bytes, np.ndarray] = {}
        if todo:
            vecs = self.inner.embed_documents(list(todo.values()))
            fresh = {k: np.asarray(v, dtype=np.float32) for k, v in zip(todo, vecs, strict=True)}
            found.update(fresh)
            if self.path is not None:
                self._write(fresh)
        self._remember({k: found[k] for k in dict.fromkeys(keys)})
        return [found[k] for k in keys]

    def warm(self, texts: Iterable[str]) -> int:
        """Embed, in batches, the texts not in the sidecar yet; returns how many were embedded.
        Nothing goes to memory: this fills the disk for the processes that will serve."""
        pending = dict.fromkeys(texts)
        keyed = {self.key(t): t for t in pending}
        if self.path is not None:
            for k in self._read(list(keyed), vectors=False):  # read whole before popping
                keyed.pop(k, None)
        items = list(keyed.items())
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            vecs = self.inner.embed_documents([t for _, t in batch])
            fresh = {
                k: np.asarray(v, dtype=np.float32) for (k, _), v in zip(batch, vecs, strict=True)
            }
            if self.path is not None:
                self._write(fresh)
            else:
                self._remember(fresh)
        return len(items)

    def keep_words(
        self, texts: Iterable[str], words_of: Callable[[str], Set[str]] = content_words
    ) -> int:
        """Store the content words of the texts whose words are not stored yet (for this
        tokenizer): a refresh does it, so that answering tokenizes no sentence. ``words_of``:
        ``content_words`` or a memo of it. Returns how many were stored."""
        if self.path is None:
            return 0
        keyed = {self.key(t): t for t in dict.fromkeys(texts)}
        try:
            db = self._db()
            try:
                query = "SELECT key FROM words WHERE tokenizer = ? AND key IN ({marks})"
                for (k,) in _select_in(db, query, [TOKENIZER_VERSION], list(keyed)):
                    keyed.pop(bytes(k), None)
                rows = [
                    (k, TOKENIZER_VERSION, " ".join(sorted(words_of(t)))) for k, t in keyed.items()
                ]
                with db:
                    db.executemany("INSERT OR REPLACE INTO words VALUES (?, ?, ?)", rows)
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("sentence cache write failed (%s)", exc)
            return 0
        return len(rows)

    def words(self, texts: Sequence[str]) -> dict[str, frozenset[str]]:
        """The content words stored for each of ``texts`` (``content_words``, as a refresh
        stored them with this tokenizer); texts without stored words are left out."""
        out: dict[str, frozenset[str]] = {}
        if self.path is None or not texts:
            return out
        keyed = {self.key(t): t for t in dict.fromkeys(texts)}
        try:
            query = "SELECT key, stems FROM words WHERE tokenizer = ? AND key IN ({marks})"
            for k, stems in _select_in(self._reader(), query, [TOKENIZER_VERSION], list(keyed)):
                out[keyed[bytes(k)]] = frozenset(str(stems).split())
        except sqlite3.Error as exc:
            self._drop_reader()
            log.warning("sentence cache read failed (%s): tokenizing instead", exc)
        return out

    def keep_readings(
        self,
        scope: str,
        reader: str,
        chunks: Sequence[tuple[str, str]],
        read: Callable[[str], Any],
    ) -> int:
        """Store ``read(text)`` (JSON) for the chunks (id, text) of ``scope`` that have no
        reading of this ``reader`` version yet. Returns how many were stored."""
        if self.path is None or not chunks:
            return 0
        have = self.read_chunks(scope, reader, [cid for cid, _ in chunks])
        rows = [
            (_reading_key(reader, text), scope, cid, reader, json.dumps(read(text)))
            for cid, text in chunks
            if cid not in have
        ]
        try:
            db = self._db()
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?)", rows)
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("sentence cache write failed (%s)", exc)
            return 0
        return len(rows)

    def read_chunks(self, scope: str, reader: str, chunk_ids: Sequence[str]) -> set[str]:
        """The chunks among ``chunk_ids`` with a reading of this ``reader`` version."""
        out: set[str] = set()
        if self.path is None:
            return out
        try:
            db = self._db()
            try:
                query = (
                    "SELECT chunk FROM readings WHERE scope = ? AND reader = ? "
                    "AND chunk IN ({marks})"
                )
                out.update(str(r[0]) for r in _select_in(db, query, [scope, reader], chunk_ids))
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("sentence cache read failed (%s)", exc)
        return out

    def readings(self, reader: str, texts: Sequence[str]) -> dict[str, Any]:
        """The stored reading of each chunk text (by this ``reader`` version), for those a
        refresh stored; the others are left out."""
        out: dict[str, Any] = {}
        if self.path is None or not texts:
            return out
        keyed = {_reading_key(reader, t): t for t in dict.fromkeys(texts)}
        try:
            query = "SELECT key, data FROM readings WHERE key IN ({marks})"
            for k, data in _select_in(self._reader(), query, [], list(keyed)):
                out[keyed[bytes(k)]] = json.loads(data)
        except (sqlite3.Error, ValueError) as exc:
            self._drop_reader()
            log.warning("sentence cache read failed (%s): reading chunks instead", exc)
        return out

    def hold(self, scope: str, held: dict[str, list[str]]) -> None:
        """Record that chunk ``id`` of collection ``scope`` holds each of ``held[id]``."""
        rows = [(scope, cid, self.key(t)) for cid, texts in held.items() for t in texts]
        if self.path is None or not rows:
            return
        try:
            db = self._db()
            try:
                with db:
                    db.executemany("INSERT OR IGNORE INTO holders VALUES (?, ?, ?)", rows)
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("sentence cache write failed (%s)", exc)

    def held(self, scope: str, chunk_ids: Sequence[str]) -> set[str]:
        """The chunks among ``chunk_ids`` recorded as holders (their sentences are in)."""
        out: set[str] = set()
        if self.path is None:
            return out
        try:
            db = self._db()
            try:
                query = "SELECT DISTINCT chunk FROM holders WHERE scope = ? AND chunk IN ({marks})"
                out.update(str(r[0]) for r in _select_in(db, query, [scope], chunk_ids))
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("sentence cache read failed (%s)", exc)
        return out

    def forget(self, scope: str, chunk_ids: Iterable[str]) -> int:
        """Chunks of ``scope`` deleted: drop their records, then the vectors no chunk holds any
        more (a sentence another chunk or collection still quotes stays). Returns how many
        vectors went."""
        ids = list(dict.fromkeys(chunk_ids))
        if self.path is None or not ids:
            return 0
        gone = 0
        try:
            db = self._db()
            try:
                with db:
                    for start in range(0, len(ids), _SQLITE_VARS):
                        part = ids[start : start + _SQLITE_VARS]
                        marks = ",".join("?" * len(part))
                        where = f"scope = ? AND chunk IN ({marks})"
                        keys = [
                            r[0]
                            for r in db.execute(
                                f"SELECT DISTINCT key FROM holders WHERE {where}", [scope, *part]
                            )
                        ]
                        db.execute(f"DELETE FROM holders WHERE {where}", [scope, *part])
                        db.execute(f"DELETE FROM readings WHERE {where}", [scope, *part])
                        for k in keys:
                            if db.execute("SELECT 1 FROM holders WHERE key = ?", (k,)).fetchone():
                                continue
                            gone += db.execute("DELETE FROM vectors WHERE key = ?", (k,)).rowcount
                            db.execute("DELETE FROM words WHERE key = ?", (k,))
                            with self._lock:
                                self._memory.pop(bytes(k), None)
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.warning("sentence cache cleanup failed (%s)", exc)
        return gone

    def __len__(self) -> int:
        return len(self._memory)

    # -- storage ---------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(self.path, timeout=10)

    def _reader(self) -> sqlite3.Connection:
        """This thread's connection for what a question reads (vectors, words, readings),
        kept open: opening one per read was a fifth of those reads. Each statement sees what
        other processes committed before it."""
        db: sqlite3.Connection | None = getattr(self._readers, "db", None)
        if db is None:
            db = self._readers.db = self._db()
        return db

    def _drop_reader(self) -> None:
        db: sqlite3.Connection | None = getattr(self._readers, "db", None)
        self._readers.db = None
        if db is not None:
            db.close()

    def _read(self, keys: Sequence[bytes], vectors: bool = True) -> dict[bytes, np.ndarray]:
        out: dict[bytes, np.ndarray] = {}
        try:
            query = "SELECT key, vec FROM vectors WHERE key IN ({marks})"
            for k, blob in _select_in(self._reader(), query, [], keys):
                out[bytes(k)] = np.frombuffer(blob, dtype=np.float32).copy() if vectors else _EMPTY
        except sqlite3.Error as exc:
            self._drop_reader()
            log.warning("sentence cache read failed (%s): embedding instead", exc)
        return out

    def _write(self, fresh: dict[bytes, np.ndarray]) -> None:
        try:
            db = self._db()
            try:
                with db:
                    db.executemany(
                        "INSERT OR IGNORE INTO vectors VALUES (?, ?)",
                        [(k, v.astype(np.float32).tobytes()) for k, v in fresh.items()],
                    )
            finally:
                db.close()
        except sqlite3.Error as exc:  # a busy or read-only sidecar costs speed, not answers
            log.warning("sentence cache write failed (%s)", exc)

    def _remember(self, items: dict[bytes, np.ndarray]) -> None:
        with self._lock:
            for k, v in items.items():
                self._memory[k] = v
                self._memory.move_to_end(k)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)


_EMPTY = np.zeros(0, dtype=np.float32)


def _reading_key(reader: str, text: str) -> bytes:
    return hashlib.blake2b(f"{reader}\0{text}".encode(), digest_size=16).digest()


def _content_words(text: str) -> frozenset[str]:
    return frozenset(content_words(text))


Reading = Callable[[str, Callable[[str], Set[str]]], Any]
"""reading(text, words_of): what the answerer reads of a chunk (``extractive.chunk_reading``),
its sentences' content words taken from ``words_of`` (``content_words``, or a memo of it)."""


class ChunkSentences:
    """The refresh's sentence warmer (``indexing.plan.SentenceWarmer``) for one collection:
    embeds, into ``cache``'s sidecar, the sentences an answer may quote from each chunk
    written (``units``: ``answering.extractive.sentence_units``), and forgets them with the
    chunks. ``scope`` names the collection (two builds of one embedder share the sidecar)."""

    def __init__(
        self,
        cache: SentenceCache,
        scope: str,
        units: Callable[[str], list[str]],
        reading: Reading | None = None,
        reader: str = "",
    ) -> None:
        """``reading``: what the answerer reads of a chunk (``extractive.chunk_reading``),
        stored too, for the code version ``reader``."""
        self.cache = cache
        self.scope = scope
        self.units = units
        self.reading = reading
        self.reader = reader
        self.embedded = 0  # sentences embedded by this warmer (the others were in already)

    def warm(self, chunks: Sequence[tuple[str, str]]) -> int:
        """(id, text) of chunks about to be searchable: embed their sentences not in yet.
        Chunks already recorded are skipped (a copy from a killed refresh, a rewrite)."""
        done = self.cache.held(self.scope, [cid for cid, _ in chunks])
        held = {cid: self.units(text) for cid, text in chunks if cid not in done}
        texts = [t for units in held.values() for t in units]
        n = self.cache.warm(texts)
        # each distinct sentence tokenized once, for its stored words and its chunks' readings
        # (a quotable unit of a reading is one of the chunk's ``units``)
        words_of = functools.lru_cache(maxsize=None)(_content_words)
        self.cache.keep_words(texts, words_of)
        self.cache.hold(self.scope, held)
        if self.reading is not None:
            reading = self.reading
            self.cache.keep_readings(
                self.scope, self.reader, chunks, lambda text: reading(text, words_of)
            )
        self.embedded += n
        return n

    def forget(self, chunk_ids: Sequence[str]) -> int:
        return self.cache.forget(self.scope, chunk_ids)

    def missing(self, chunk_ids: Sequence[str]) -> list[str]:
        if self.cache.path is None:
            return []  # memory only: nothing to catch up across processes
        done = self.cache.held(self.scope, chunk_ids)
        if self.reading is not None:  # readings of another code version are read again
            read = self.cache.read_chunks(self.scope, self.reader, chunk_ids)
            return [cid for cid in chunk_ids if cid not in done or cid not in read]
        return [cid for cid in chunk_ids if cid not in done]
