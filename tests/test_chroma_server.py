"""What only server mode has: replicas sharing a ``chroma run`` server with a writer.

The behaviours both modes share (refresh, search, ask, rebuilds) are the store contract, run
against both in ``tests/test_store_contract.py``. The server fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings

pytestmark = pytest.mark.integration


def _node(
    tmp_path: Path, name: str, corpus: Path, url: str, embedder: Embeddings, **kw: object
) -> Assistant:
    """One process's view: its own index_dir (catalogue, lexical side), the shared server."""
    settings = Settings(
        corpus_dir=corpus,
        index_dir=tmp_path / name,
        chroma_url=url,
        **kw,  # type: ignore[arg-type]
    )
    return Assistant(settings, embedder=embedder)


def test_replica_started_after_a_refresh_rebuilds_its_bm25_side(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings, server: str
) -> None:
    writer = _node(tmp_path, "writer", small_corpus, server, hash_embeddings)
    writer.refresh()
    replica = _node(tmp_path, "replica", small_corpus, server, hash_embeddings)
    assert replica.search("quatre valeurs du Pacte civique", k=1)[0].source == "charte/pacte.md"
    # its document list (and so its /sources links) comes from the shared collection
    assert replica.indexed_sources() == writer.indexed_sources() != set()
    mine = {d.source: (d.title, d.kind, d.chunks) for d in replica.documents()}
    theirs = {d.source: (d.title, d.kind, d.chunks) for d in writer.documents()}
    assert mine == theirs
    assert replica.stats().documents == writer.stats().documents > 0
    lexical_dir = replica.store.lexical_dir
    assert (lexical_dir / "fingerprint").read_text() == writer.store.fingerprint()

    (small_corpus / "recits" / "catalyseurs.md").write_text(
        "# Catalyseurs\n\nLes catalyseurs territoriaux animent les écosystèmes de coopération "
        "et outillent les acteurs locaux.\n",
        encoding="utf-8",
    )
    writer.refresh()
    # A replica (re)started after the writer's refresh sees the change in both rankings.
    restarted = _node(tmp_path, "replica", small_corpus, server, hash_embeddings)
    retrieval = restarted.retrieve("catalyseurs territoriaux écosystèmes", k=3)
    top = retrieval.results[0]
    assert top.chunk.metadata["source"] == "recits/catalyseurs.md"
    assert top.bm25_rank == 1 and top.dense_rank == 1
    assert (lexical_dir / "fingerprint").read_text() == writer.store.fingerprint()


def test_running_replica_follows_the_writer(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings, server: str
) -> None:
    writer = _node(tmp_path, "writer", small_corpus, server, hash_embeddings)
    writer.refresh()
    replica = _node(tmp_path, "replica", small_corpus, server, hash_embeddings)
    replica.search("Pacte civique", k=1)  # the replica is up and serving
    (small_corpus / "recits" / "catalyseurs.md").write_text(
        "# Catalyseurs\n\nLes catalyseurs territoriaux animent les écosystèmes de coopération.\n",
        encoding="utf-8",
    )
    writer.refresh()
    time.sleep(2.1)  # replicas re-check the collection's fingerprint at most every 2 s
    hits = replica.search("catalyseurs territoriaux écosystèmes", k=1)
    assert hits[0].source == "recits/catalyseurs.md"
