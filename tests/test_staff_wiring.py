"""The staff console is reachable only when a token is set: /api/admin and the /staff page."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.errors import ConfigError
from ui.server import create_app

TOKEN = "a-long-enough-staff-token-1234"


def _client(tmp_path: Path, corpus: Path, emb: Embeddings, token: str | None) -> TestClient:
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", admin_token=token)
    assistant = Assistant(settings, embedder=emb)
    assistant.refresh()
    return TestClient(create_app(settings, assistant), raise_server_exceptions=False)


def test_no_token_no_console(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    with _client(tmp_path, small_corpus, hash_embeddings, None) as client:
        assert client.get("/api/admin/documents").status_code == 404
        assert (
            client.get(
                "/api/admin/documents", headers={"Authorization": f"Bearer {TOKEN}"}
            ).status_code
            == 404
        )
        # What the server decides: no /staff app is mounted at all (Gradio renders a page
        # client-side from its /config, so the page text alone could never show the console).
        assert client.get("/staff/").status_code == 404
        assert client.get("/staff/config").status_code == 404
        assert "Équipe" not in client.get("/config").text  # no staff tab on the main page


def test_token_opens_the_console(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    with _client(tmp_path, small_corpus, hash_embeddings, TOKEN) as client:
        assert client.get("/api/admin/documents").status_code == 401
        wrong = client.get("/api/admin/documents", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.get("/api/admin/documents", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert client.get("/staff/").status_code == 200
        assert "Console de l'équipe" in client.get("/staff/config").text  # the staff app
        assert "Équipe" in client.get("/config").text  # the main page has the staff tab
        assert repr(Settings(admin_token=TOKEN)).count(TOKEN) == 0  # never in logs


def test_weak_token_is_refused(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    with pytest.raises(ConfigError):
        _client(tmp_path, small_corpus, hash_embeddings, "short")
