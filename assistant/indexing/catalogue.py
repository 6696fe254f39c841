"""The catalogue: per build, each document's fully indexed version (one SQLite table).

It is the one ledger of what is indexed. A chunk is searchable when its ``source`` and
``sha256`` metadata match its document's row here (``chunk_filter``); a refresh writes a new
version's chunks beside the old ones, then switches the row in one write (``indexing.write``).
Chunk ids per document are read from the chunks' own metadata, so no other ledger is kept.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALIAS = "alias"  # a second name for content indexed under another name
PENDING = "pending"  # a new document while its first version is written
LIVE = ("indexed", "warning")  # statuses whose chunks are searchable


@dataclass
class DocumentRecord:
    """One row of the catalogue: the last known state of a corpus document."""

    source: str
    sha256: str
    title: str
    kind: str
    pages: int | None
    chunks: int
    status: str  # indexed | warning | failed | alias | pending
    reason: str
    indexed_at: float


def is_live(record: DocumentRecord) -> bool:
    """True when the catalogue says this document has searchable chunks."""
    return record.status in LIVE and record.chunks > 0


def visible_versions(documents: dict[str, DocumentRecord]) -> dict[str, str]:
    """source -> sha256 of its fully indexed version: search shows only chunks matching it."""
    return {s: d.sha256 for s, d in documents.items() if is_live(d)}


class ChunkFilter:
    """A test on chunk metadata: True for chunks of a document's fully indexed version.

    Two filters are equal when they show the same versions (``versions``: source -> sha256), so
    a reader holding a copy of the chunks (``retrieval.exact``) can tell whether what it holds
    is still what the catalogue shows."""

    __slots__ = ("versions",)

    def __init__(self, versions: dict[str, str]) -> None:
        self.versions = versions

    def __call__(self, meta: dict[str, Any]) -> bool:
        return self.versions.get(str(meta.get("source"))) == meta.get("sha256")

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, ChunkFilter) and self.versions == other.versions)

    def __hash__(self) -> int:
        return hash(frozenset(self.versions.items()))


def chunk_filter(documents: dict[str, DocumentRecord]) -> ChunkFilter | None:
    """The ``ChunkFilter`` of ``documents``' indexed versions.

    None (show everything) when this node has no catalogue: a replica sharing a Chroma server
    with a writer elsewhere (its catalogue lives with the writer) or an index from before.
    ``Catalogue.chunk_filter`` keeps one per catalogue version.
    """
    if not documents:
        return None
    return ChunkFilter(visible_versions(documents))


class CatalogVersion:
    """What changes whenever ``catalog.sqlite`` is written by any process, read cheaply at every
    query: the file's identity and SQLite's ``PRAGMA data_version`` on one connection kept open
    (it moves when any other connection commits), ~10 µs.

    Never an ``os.open``/``os.close`` of the file outside SQLite: closing any descriptor of a
    file drops every POSIX lock this process holds on it, so a probe closing its own descriptor
    while a refresh thread writes the catalogue would drop that writer's locks and let other
    processes read or write mid-transaction (sqlite.org, "How To Corrupt An SQLite Database
    File", 2.2.1). SQLite's own connections are safe: it defers such closes itself."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None
        self._opened = 0

    def read(self) -> tuple[int, ...] | None:
        """The version now; None when the file cannot be read. A file replaced (an index
        rebuilt from scratch) is a new version: the connection follows the new file."""
        try:
            st = os.stat(self.path)  # no descriptor: nothing to close
        except OSError:
            return None
        file = (st.st_dev, st.st_ino)
        with self._lock:
            try:
                if self._db is None or self._file != file:
                    self.close_locked()
                    self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                    self._file, self._opened = file, self._opened + 1
                (data_version,) = self._db.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                self.close_locked()
                return None
        return (*file, self._opened, int(data_version))

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def close_locked(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db, self._file = None, None


class Catalogue:
    """The rows of one collection in ``catalog.sqlite`` (shared by the builds of an index)."""

    def __init__(self, path: Path, collection: str) -> None:
        self.path = path
        self.collection = collection
        self._documents_cache: tuple[tuple[int, ...], dict[str, DocumentRecord]] | None = None
        self._filter_cache: tuple[object, ChunkFilter | None] | None = None
        self.version = CatalogVersion(path)
        with self._db() as db:
            db.execute(
                """CREATE TABLE IF NOT EXISTS documents (
                    collection TEXT, source TEXT, sha256 TEXT, title TEXT, kind TEXT,
                    pages INTEGER, chunks INTEGER, status TEXT, reason TEXT, indexed_at REAL,
                    PRIMARY KEY (collection, source))"""
            )

    def close(self) -> None:
        """Close the connection the version probe keeps open (its owner, the Assistant, is
        closing); a later read opens it again."""
        self.version.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def documents(self) -> dict[str, DocumentRecord]:
        """The catalogue (a fresh dict). Read from SQLite only when the file changed since the
        last read, by any process: search filters on it at every query (0.5-2 ms a read)."""
        return dict(self._records())

    def chunk_filter(self) -> ChunkFilter | None:
        """``chunk_filter`` of the catalogue as it is now: the same object while the file is
        unchanged, by any process (rebuilding it cost 0.2 ms a query over 500 documents), a
        new one after any write. A caller may rely on that to tell the catalogue moved."""
        records = self._records()
        cached = self._filter_cache
        if cached is not None and cached[0] is records:
            return cached[1]
        current = chunk_filter(records)
        self._filter_cache = (records, current)
        return current

    def _records(self) -> dict[str, DocumentRecord]:
        """The rows as last read (never to be changed by a caller): re-read when the file's
        version moved; a new dict object whenever they were re-read."""
        version = self.version.read()
        cached = self._documents_cache
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        with self._db() as db:
            rows = db.execute(
                "SELECT source, sha256, title, kind, pages, chunks, status, reason, indexed_at "
                "FROM documents WHERE collection = ? ORDER BY source",
                (self.collection,),
            ).fetchall()
        records = {r[0]: DocumentRecord(*r) for r in rows}
        self._documents_cache = (version, records) if version is not None else None
        return records

    def save(self, record: DocumentRecord) -> None:
        self.save_many([record])

    def save_many(self, records: Iterable[DocumentRecord], forget: Iterable[str] = ()) -> None:
        """Write ``records`` and drop the rows of ``forget`` in one transaction: a refresh
        switches a batch of documents at once (one commit, one fsync, instead of one each)."""
        rows = [
            (
                self.collection,
                r.source,
                r.sha256,
                r.title,
                r.kind,
                r.pages,
                r.chunks,
                r.status,
                r.reason,
                r.indexed_at,
            )
            for r in records
        ]
        gone = [(self.collection, s) for s in forget]
        if not rows and not gone:
            return
        with self._db() as db:
            db.executemany("INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            db.executemany("DELETE FROM documents WHERE collection = ? AND source = ?", gone)

    def forget(self, source: str) -> None:
        with self._db() as db:
            db.execute(
                "DELETE FROM documents WHERE collection = ? AND source = ?",
                (self.collection, source),
            )
