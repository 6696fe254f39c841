"""A first `alliance serve` answers at once: BM25 over the corpus as read (the early index)
while the vectors are written in the background, then hybrid without a restart. Real Chroma in
tmp_path, a refresh held mid-way by an embedder that waits (only in the build's thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ONE_DOCUMENT_PER_WRITE, HashEmbeddings, serve_page, write_corpus
from fastapi.testclient import TestClient

from assistant import Assistant, Settings
from assistant.indexing.embedders import EngineLock, bulk_embedding
from ui.api import IndexState
from ui.app import index_notice
from ui.server import create_app, start_background_build

# Written unlike the shared sample: plain text, no heading, a list of numbered steps.
NOTES = """Fiche pratique - les jardins partagés

Pour ouvrir un jardin partagé avec la mairie, l'association suit quatre étapes :
1. trouver une parcelle inutilisée avec le service des espaces verts ;
2. signer une convention d'occupation précaire ;
3. réunir les habitants volontaires autour d'un règlement ;
4. organiser une première récolte ouverte au quartier.
"""

PAGE = """<!doctype html><html lang="fr"><head><title>Les ressourceries</title></head><body>
<nav>Accueil | Contact</nav><main><article><h1>Les ressourceries</h1>
<p>Une ressourcerie collecte les objets dont les habitants n'ont plus l'usage, les
répare et les revend à petit prix. Elle emploie souvent des salariés en insertion et
travaille avec la communauté de communes qui lui confie la déchetterie.</p>
</article></main></body></html>""".encode()


class BuildGate(HashEmbeddings):
    """Embeds passages in the index-build thread only while ``gate`` is open (a refresh held
    mid-way); queries, in other threads, embed freely."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.built = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if threading.current_thread().name == "index-build":
            assert self.gate.wait(timeout=60)
            self.built += len(texts)
        return super().embed_documents(texts)


def corpus_with_notes(root: Path) -> Path:
    corpus = write_corpus(root)
    (corpus / "boite-a-outils" / "jardins.txt").write_text(NOTES, encoding="utf-8")
    return corpus


def wait_until(check: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_first_build_answers_from_bm25_then_switches_to_hybrid(tmp_path: Path) -> None:
    corpus = corpus_with_notes(tmp_path / "corpus")
    # hash vectors have their own scale: the decline floor set for them
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", abstain_threshold=0.1)
    embedder = BuildGate()
    assistant = Assistant(settings, embedder=embedder)
    state = IndexState()
    with TestClient(create_app(settings, assistant, state=state)) as client:
        thread = start_background_build(assistant, state)
        assert thread is not None
        wait_until(lambda: not state.blocking)
        health = client.get("/api/health").json()
        assert health["status"] == "ok" and health["mode"] == "lexical"
        assert health["documents"] == 4 and "progress" in health
        assert "amélioreront quand il sera complet" in index_notice(assistant, state)

        hits = client.post("/api/search", json={"query": "convention d'occupation"}).json()
        assert hits["hits"][0]["source"] == "boite-a-outils/jardins.txt"
        question = "Quand le Pacte civique a-t-il été lancé ?"
        body = client.post("/api/ask", json={"question": question}).json()
        assert body["grounded"] and "2011" in body["answer"]
        assert body["citations"][0]["source"] == "charte/pacte.md"
        assert client.get("/sources/boite-a-outils/jardins.txt").status_code == 200
        assert embedder.built == 0  # all of it before a single passage was embedded

        embedder.gate.set()
        thread.join(timeout=60)
        assert not thread.is_alive() and not state.error
        health = client.get("/api/health").json()
        assert health["mode"] == "hybrid" and "progress" not in health
        assert health["chunks"] == assistant.store.count()
        assert "amélioreront" not in index_notice(assistant, state)
        hits = client.post("/api/search", json={"query": "convention d'occupation"}).json()
        assert hits["hits"][0]["source"] == "boite-a-outils/jardins.txt"
    assistant.close()


def test_early_passages_are_the_ones_the_refresh_stores(tmp_path: Path) -> None:
    settings = Settings(
        corpus_dir=corpus_with_notes(tmp_path / "corpus"), index_dir=tmp_path / "index"
    )
    with Assistant(settings, embedder=HashEmbeddings()) as assistant:
        assert assistant.first_build() and assistant.prepare_refresh() == "warm"
        assert assistant.search_mode() == "lexical"  # announced: before the corpus is read
        assert assistant.warm_start()
        early = {h.chunk_id: h for h in assistant.search("jardin partagé mairie", k=10)}
        assert assistant.search_mode() == "lexical"
        assistant.refresh()
        assert assistant.search_mode() == "hybrid" and not assistant.first_build()
        stored = assistant.store.get_chunks(list(early))
        assert set(stored) == set(early)  # same ids: same version, same passage
        for cid, hit in early.items():
            assert stored[cid].text == hit.text
            assert stored[cid].metadata["source"] == hit.source
        assert not assistant.warm_start()  # complete: stays hybrid
        assert assistant.prepare_refresh() == "current"


class Killed(Exception):
    """A kill mid-way (not an AllianceError: nothing catches it)."""


class DiesAfter(HashEmbeddings):
    def __init__(self, passages: int) -> None:
        super().__init__()
        self.left = passages

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.left <= 0:
            raise Killed
        self.left -= len(texts)
        return super().embed_documents(texts)


def test_a_killed_first_build_resumes_lexical_over_every_document(tmp_path: Path) -> None:
    settings = Settings(
        corpus_dir=corpus_with_notes(tmp_path / "corpus"),
        index_dir=tmp_path / "index",
        write_group_chunks=ONE_DOCUMENT_PER_WRITE,
    )
    with Assistant(settings, embedder=DiesAfter(1)) as first, pytest.raises(Killed):
        first.refresh()

    embedder = BuildGate()
    with Assistant(settings, embedder=embedder) as assistant:
        written = assistant.store.all_chunks()
        assert assistant.first_build() and written
        state = IndexState()
        with TestClient(create_app(settings, assistant, state=state)) as client:
            thread = start_background_build(assistant, state)
            assert thread is not None  # queries wait for the early index, not the partial one
            wait_until(lambda: not state.blocking)
            assert client.get("/api/health").json()["mode"] == "lexical"
            # every document answers, ranked by BM25 alone: the documents embedded before the
            # kill get no head start
            for query in ("convention d'occupation", "RAMEAU créé en 2006", "indicateurs"):
                retrieval = assistant.retrieve(query)
                assert retrieval.results, query
                assert all(r.dense_rank is None for r in retrieval.results)
            embedder.gate.set()
            thread.join(timeout=60)
            assert client.get("/api/health").json()["mode"] == "hybrid"
            assert not state.error


def test_a_stale_complete_index_keeps_answering_hybrid(tmp_path: Path) -> None:
    corpus = corpus_with_notes(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    with Assistant(settings, embedder=HashEmbeddings()) as a:
        a.refresh()
    (corpus / "recits" / "nouveau.md").write_text("# Nouveau\n\nUn récit ajouté.\n", "utf-8")
    embedder = BuildGate()
    with Assistant(settings, embedder=embedder) as assistant:
        assert not assistant.first_build() and assistant.prepare_refresh() == "answering"
        state = IndexState()
        thread = start_background_build(assistant, state)
        assert thread is not None and not state.blocking
        assert assistant.search("Pacte civique") and assistant.search_mode() == "hybrid"
        embedder.gate.set()
        thread.join(timeout=60)


def test_a_first_build_whose_corpus_cannot_be_read_early(tmp_path: Path) -> None:
    """A broken sources.toml: no early index. A first build killed half-way answers from the
    chunks it wrote (hybrid); a fresh one has nothing and waits; the refresh says why."""
    corpus = corpus_with_notes(tmp_path / "corpus")
    settings = Settings(
        corpus_dir=corpus, index_dir=tmp_path / "index", write_group_chunks=ONE_DOCUMENT_PER_WRITE
    )
    with Assistant(settings, embedder=DiesAfter(10)) as first, pytest.raises(Killed):
        first.refresh()  # killed after two documents
    (corpus / "sources.toml").write_text("[[web]\nurl = \n", encoding="utf-8")
    with Assistant(settings, embedder=HashEmbeddings()) as assistant:
        assert assistant.first_build() and not assistant.answers_during_refresh()
        state = IndexState()
        thread = start_background_build(assistant, state)
        assert thread is not None
        thread.join(timeout=60)
        assert not thread.is_alive() and "sources.toml" in state.error
        assert not state.blocking and assistant.search_mode() == "hybrid"
        hits = assistant.search("convention d'occupation")
        assert hits[0].source == "boite-a-outils/jardins.txt"

    fresh = Settings(corpus_dir=corpus, index_dir=tmp_path / "fresh")
    with Assistant(fresh, embedder=HashEmbeddings()) as assistant:
        assert not assistant.warm_start() and assistant.search_mode() == "hybrid"
        state = IndexState()
        thread = start_background_build(assistant, state)
        assert thread is not None
        thread.join(timeout=60)
        assert state.blocking and "sources.toml" in state.error


@pytest.fixture
def site() -> Iterator[str]:
    with serve_page(PAGE) as base:
        yield base


def test_web_pages_of_sources_toml_answer_early(tmp_path: Path, site: str) -> None:
    corpus = corpus_with_notes(tmp_path / "corpus")
    url = f"{site}/ressourceries"
    (corpus / "sources.toml").write_text(
        f'[[web]]\nurl = "{url}"\nkind = "recit"\n', encoding="utf-8"
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    with Assistant(settings, embedder=HashEmbeddings()) as assistant:
        assert assistant.warm_start()
        hits = assistant.search("ressourcerie déchetterie salariés en insertion")
        assert hits[0].source == url and hits[0].kind == "recit"
        assert url in assistant.indexed_sources()


def test_health_says_lexical_while_the_early_index_is_read(tmp_path: Path) -> None:
    """The mode comes from the Assistant alone: lexical from the moment a warm start reads
    the corpus (a web page held by its site here), through the early index, then hybrid."""
    asked, release = threading.Event(), threading.Event()

    def hold() -> None:
        asked.set()
        release.wait(timeout=8)  # under the fetch's timeout

    with serve_page(PAGE, before=hold) as base:
        corpus = corpus_with_notes(tmp_path / "corpus")
        url = f"{base}/ressourceries"
        (corpus / "sources.toml").write_text(f'[[web]]\nurl = "{url}"\n', encoding="utf-8")
        settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", abstain_threshold=0.1)
        embedder = BuildGate()
        assistant = Assistant(settings, embedder=embedder)
        state = IndexState()
        try:
            with TestClient(create_app(settings, assistant, state=state)) as client:
                thread = start_background_build(assistant, state)
                assert thread is not None and state.blocking
                # at once, before the build thread reads anything
                assert client.get("/api/health").json()["mode"] == "lexical"
                assert asked.wait(timeout=30)
                health = client.get("/api/health").json()
                assert health["status"] == "building" and health["mode"] == "lexical"
                assert "Vous pourrez poser vos questions" in index_notice(assistant, state)
                release.set()
                wait_until(lambda: not state.blocking)
                assert client.get("/api/health").json()["mode"] == "lexical"
                assert "amélioreront quand il sera complet" in index_notice(assistant, state)
                embedder.gate.set()
                thread.join(timeout=60)
                assert not thread.is_alive() and not state.error
                assert client.get("/api/health").json()["mode"] == "hybrid"
        finally:
            release.set()
            embedder.gate.set()
            assistant.close()


def test_a_question_embeds_before_the_next_batch_of_a_build() -> None:
    lock = EngineLock(grace_s=0.0)
    order: list[str] = []
    entered = [threading.Event() for _ in range(3)]
    proceed = [threading.Event() for _ in range(3)]

    def build() -> None:
        with bulk_embedding():
            for i in range(3):
                with lock.hold():
                    order.append(f"batch{i}")
                    entered[i].set()
                    assert proceed[i].wait(timeout=30)

    def question() -> None:
        with lock.hold():
            order.append("question")

    builder = threading.Thread(target=build)
    builder.start()
    assert entered[0].wait(timeout=30)
    asker = threading.Thread(target=question)
    asker.start()
    wait_until(lambda: lock.waiting == 1)
    for event in proceed:
        event.set()
    builder.join(timeout=30)
    asker.join(timeout=30)
    assert order == ["batch0", "question", "batch1", "batch2"]
