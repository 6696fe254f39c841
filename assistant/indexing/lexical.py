"""The lexical side of the index: BM25 over every chunk plus a table of chunk texts and metadata.

Built from the Chroma collection after each refresh (so replicas sharing one Chroma server can
rebuild theirs from the same source of truth) and persisted under ``index_dir/lexical-<embedder>``.
A fingerprint (chunk count + hash of ids) tells whether it is in step with the collection.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from assistant.errors import IndexNotReadyError
from assistant.indexing.bm25 import BM25Index
from assistant.indexing.catalogue import DocumentRecord
from assistant.indexing.store import IndexStore, StoredChunk, documents_from_chunks

log = logging.getLogger(__name__)


def fingerprint(ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for cid in sorted(ids):
        h.update(cid.encode())
    return f"{len(ids)}:{h.hexdigest()[:16]}"


def lexical_text(chunk: StoredChunk) -> str:
    """What BM25 sees: the title twice (a light title boost) and the chunk text."""
    title = str(chunk.metadata.get("title", ""))
    return f"{title}\n{title}\n{chunk.text}"


class LexicalIndex:
    """BM25 + chunk table, loaded in memory for fast hybrid search."""

    def __init__(self, bm25: BM25Index, chunks: dict[str, StoredChunk], fp: str) -> None:
        self.bm25 = bm25
        self.chunks = chunks
        self.fingerprint = fp

    def __len__(self) -> int:
        return len(self.chunks)

    @functools.cached_property
    def documents(self) -> dict[str, DocumentRecord]:
        """The documents its chunks belong to (see ``documents_from_chunks``): computed once,
        the chunk table never changes after loading."""
        return documents_from_chunks(self.chunks.values())

    @classmethod
    def build(cls, store: IndexStore) -> LexicalIndex:
        """Rebuild from the collection and persist atomically."""
        stored = store.all_chunks()
        ids = [c.id for c in stored]
        bm25 = BM25Index.build(ids, [lexical_text(c) for c in stored])
        lex = cls(bm25, {c.id: c for c in stored}, fingerprint(ids))
        lex.save(store.lexical_dir)
        store.set_fingerprint(lex.fingerprint)
        return lex

    def save(self, directory: Path) -> None:
        # this writer's own temporary folder: two writers (replicas sharing an index folder
        # over a Chroma server) never write into each other's
        mine = f"{os.getpid()}-{threading.get_ident()}"
        tmp = directory.with_name(f"{directory.name}.tmp-{mine}")
        _remove_leftovers(directory)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        self.bm25.save(tmp / "bm25")
        with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as fh:
            for c in self.chunks.values():
                fh.write(json.dumps([c.id, c.text, c.metadata], ensure_ascii=False) + "\n")
        (tmp / "fingerprint").write_text(self.fingerprint, encoding="utf-8")
        old = directory.with_name(f"{directory.name}.old-{mine}")
        if old.exists():
            shutil.rmtree(old)
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        if old.exists():
            shutil.rmtree(old)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        try:
            fp = (directory / "fingerprint").read_text(encoding="utf-8").strip()
            bm25 = BM25Index.load(directory / "bm25")
            chunks: dict[str, StoredChunk] = {}
            with (directory / "chunks.jsonl").open(encoding="utf-8") as fh:
                for line in fh:
                    cid, text, meta = json.loads(line)
                    chunks[cid] = StoredChunk(cid, text, meta)
        except (OSError, ValueError) as exc:
            raise IndexNotReadyError(f"lexical index missing or unreadable in {directory}") from exc
        return cls(bm25, chunks, fp)

    @classmethod
    def open(cls, store: IndexStore) -> LexicalIndex:
        """Load the persisted one if it matches the collection, else rebuild it."""
        expected = store.fingerprint()
        try:
            lex = cls.load(store.lexical_dir)
            if lex.fingerprint == expected:
                return lex
            log.info("lexical index out of step with the collection: rebuilding")
        except IndexNotReadyError:
            log.info("no lexical index yet: building it")
        return cls.build(store)


def _remove_leftovers(directory: Path) -> None:
    """Temporary folders of writers that died mid-save (killed refreshes)."""
    for path in directory.parent.glob(f"{directory.name}.*-*-*"):
        pid = path.name.rsplit("-", 2)[-2]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True
