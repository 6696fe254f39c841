"""The same key behaviours as embedded mode, against a real ``chroma run`` server on 127.0.0.1.

The fixture starts the server itself (a free port, a tmp path), waits a bounded time for its
heartbeat and always kills it, so ``make test`` covers server mode with no CI change. Set
``ALLIANCE_TEST_CHROMA_URL`` to run against a server you started instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings

pytestmark = pytest.mark.integration

STARTUP_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chroma_binary() -> str | None:
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else shutil.which("chroma")


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a running Chroma server: ALLIANCE_TEST_CHROMA_URL, or one started here."""
    given = os.environ.get("ALLIANCE_TEST_CHROMA_URL")
    if given:
        yield given.rstrip("/")
        return
    binary = _chroma_binary()
    if binary is None:
        pytest.skip("the `chroma` command is not installed")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path_factory.mktemp("chroma-server")
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [binary, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _heartbeat(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (data / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"chroma server did not start on {url}:\n{tail}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


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


@pytest.fixture
def server(chroma_url: str) -> str:
    """The server URL with every collection dropped first: each test starts from a clean slate
    (so point ALLIANCE_TEST_CHROMA_URL only at a throwaway server)."""
    url = urlparse(chroma_url)
    client = chromadb.HttpClient(
        host=url.hostname or "127.0.0.1",
        port=url.port or 8000,
        ssl=url.scheme == "https",
        settings=ChromaSettings(anonymized_telemetry=False),
    )
    for col in client.list_collections():
        client.delete_collection(col.name)
    return chroma_url


def test_refresh_and_incremental_refresh_on_server(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings, server: str
) -> None:
    a = _node(tmp_path, "writer", small_corpus, server, hash_embeddings)
    assert not (tmp_path / "writer" / "chroma").exists()  # nothing embedded on disk

    first = a.refresh()
    assert first.count("added") == 3 and first.chunks_embedded == a.store.count() > 0

    again = a.refresh()
    assert again.count("unchanged") == 3 and again.chunks_embedded == 0

    pacte = small_corpus / "charte" / "pacte.md"
    pacte.write_text(
        pacte.read_text(encoding="utf-8") + "\nUn paragraphe ajouté sur la fraternité.\n",
        encoding="utf-8",
    )
    (small_corpus / "recits" / "histoire.md").unlink()
    third = a.refresh()
    by_source = {d.source: d for d in third.documents}
    assert by_source["charte/pacte.md"].status == "updated"
    assert by_source["recits/histoire.md"].status == "removed"
    assert by_source["boite-a-outils/evaluer.md"].status == "unchanged"
    assert third.chunks_embedded == by_source["charte/pacte.md"].chunks_added >= 1
    sources = {c.metadata["source"] for c in a.store.all_chunks()}
    assert sources == {"charte/pacte.md", "boite-a-outils/evaluer.md"}
    hits = a.search("Le RAMEAU créé en 2006", k=3)
    assert all(h.source != "recits/histoire.md" for h in hits)


def test_search_and_filter_on_server(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings, server: str
) -> None:
    a = _node(tmp_path, "writer", small_corpus, server, hash_embeddings)
    a.refresh()
    hits = a.search("quatre valeurs du Pacte civique", k=2)
    assert hits[0].source == "charte/pacte.md"
    assert "fraternité" in hits[0].text
    only = a.search("Pacte civique valeurs", k=5, kinds=["recit"])
    assert only and all(h.kind == "recit" for h in only)


def test_ask_on_server_with_real_model(
    tmp_path: Path, small_corpus: Path, e5: Embeddings, server: str
) -> None:
    a = _node(tmp_path, "writer", small_corpus, server, e5)
    a.refresh()
    ans = a.ask("Quelles sont les valeurs du Pacte civique ?")
    assert ans.grounded
    assert "[1]" in ans.text and "fraternité" in ans.text
    assert ans.citations[0].source == "charte/pacte.md"
    off = a.ask("Quelle est la recette de la pâte à crêpes ?")
    assert not off.grounded


def test_replica_started_after_a_refresh_rebuilds_its_bm25_side(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings, server: str
) -> None:
    writer = _node(tmp_path, "writer", small_corpus, server, hash_embeddings)
    writer.refresh()
    replica = _node(tmp_path, "replica", small_corpus, server, hash_embeddings)
    assert replica.search("quatre valeurs du Pacte civique", k=1)[0].source == "charte/pacte.md"
    # its document list (and so its /sources links) comes from the shared collection
    assert replica.indexed_sources() == writer.indexed_sources() != set()
    mine = {d["source"]: (d["title"], d["kind"], d["chunks"]) for d in replica.documents()}
    theirs = {d["source"]: (d["title"], d["kind"], d["chunks"]) for d in writer.documents()}
    assert mine == theirs
    assert replica.stats()["documents"] == writer.stats()["documents"] > 0
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
