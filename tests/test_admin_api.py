"""Staff console over HTTP: nothing without the token; with it, upload (checked), list, delete,
refresh with progress, reports and feedback. The app is assembled as ``ui.server`` would with
the hook described in ``assistant/admin_api.py``; a real index in tmp_path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import write_corpus
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixtures_docs import REPORT_PAGES, text_pdf_bytes
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.errors import AllianceError, ConfigError
from assistant.feedback import FeedbackStore
from assistant.staff import StaffConsole, check_token_strength, token_ok
from ui.admin_api import admin_router
from ui.api import IndexState, api_router, install_error_handlers
from ui.server import create_app

TOKEN = "s3cret-token-for-tests-0123"


def _app(assistant: Assistant, feedback: FeedbackStore, token: str) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    if token:
        console = StaffConsole(assistant, feedback)
        app.include_router(admin_router(console, token), prefix="/api/admin")
    app.include_router(api_router(assistant, feedback, IndexState()), prefix="/api")
    return app


@pytest.fixture
def setup(tmp_path: Path, hash_embeddings: Embeddings) -> tuple[Assistant, FeedbackStore]:
    corpus = write_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", max_file_mb=0.1)
    assistant = Assistant(settings, embedder=hash_embeddings)
    assistant.refresh()
    feedback = FeedbackStore(tmp_path / "index" / "feedback.sqlite")
    feedback.add("Comment évaluer ?", "Ainsi [1].", [], useful=False, comment="trop court")
    return assistant, feedback


ROUTES = [
    ("GET", "/api/admin/documents"),
    ("PUT", "/api/admin/files/guide.pdf"),
    ("DELETE", "/api/admin/documents/charte/pacte.md"),
    ("POST", "/api/admin/refresh"),
    ("GET", "/api/admin/refresh"),
    ("GET", "/api/admin/reports"),
    ("GET", "/api/admin/feedback"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_nothing_is_reachable_without_the_token(
    setup: tuple[Assistant, FeedbackStore], method: str, path: str
) -> None:
    assistant, feedback = setup
    off = TestClient(_app(assistant, feedback, ""))
    assert off.request(method, path, content=b"%PDF-1.7").status_code == 404
    on = TestClient(_app(assistant, feedback, TOKEN))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = on.request(method, path, headers=headers, content=b"%PDF-1.7")
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json() == {"error": "jeton d'administration requis"}
    assert (assistant.settings.corpus_dir / "charte" / "pacte.md").exists()
    assert not (assistant.settings.corpus_dir / "guide.pdf").exists()


def test_the_shipped_server_exposes_no_admin_route(setup: tuple[Assistant, FeedbackStore]) -> None:
    assistant, feedback = setup
    client = TestClient(create_app(assistant.settings, assistant, feedback=feedback))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/admin/documents", headers=auth).status_code == 404


def test_staff_upload_list_delete_refresh_reports_feedback(
    setup: tuple[Assistant, FeedbackStore],
) -> None:
    assistant, feedback = setup
    client = TestClient(_app(assistant, feedback, TOKEN))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    pdf = text_pdf_bytes(REPORT_PAGES, title="Guide des alliances")

    def put(name: str, data: bytes, folder: str = "boite-a-outils") -> tuple[int, dict[str, str]]:
        resp = client.put(f"/api/admin/files/{name}", params={"folder": folder}, content=data,
                          headers=auth)  # fmt: skip
        return resp.status_code, resp.json()

    assert put("guide.pdf", pdf) == (201, {"source": "boite-a-outils/guide.pdf"})
    assert put("page.html", b"<!DOCTYPE html><html><body><p>x</p></body></html>", "")[0] == 201
    assert put("notes.docx", b"PK\x03\x04") == (415, {"error": "type refusé (.docx) : PDF ou HTML"})
    assert put("faux.pdf", b"<html>not a pdf</html>") == (
        415,
        {"error": "le contenu n'est pas un PDF"},
    )
    assert put("script.html", b"just text, no markup")[0] == 415
    assert put("gros.pdf", b"%PDF-" + b"x" * 200_000)[0] == 413
    assert put(".cache.pdf", pdf)[0] == 400
    assert put("guide.pdf", pdf, folder="../etc")[0] == 400
    assert put("vide.pdf", b"")[0] == 400
    corpus = assistant.settings.corpus_dir
    assert sorted(p.name for p in corpus.rglob("*") if p.is_file()) == [
        "evaluer.md",
        "guide.pdf",
        "histoire.md",
        "pacte.md",
        "page.html",
    ]

    started = client.post("/api/admin/refresh", headers=auth)
    assert started.status_code == 202 and started.json()["running"] is True
    console_status = _wait(client, auth)
    assert console_status["error"] == "" and console_status["done"] == console_status["total"]
    report = {d["source"]: d for d in console_status["report"]["documents"]}
    assert report["boite-a-outils/guide.pdf"]["status"] == "added"
    assert report["page.html"]["status"] == "failed"  # too little text: reported, not indexed

    docs = {
        d["source"]: d for d in client.get("/api/admin/documents", headers=auth).json()["documents"]
    }
    assert docs["boite-a-outils/guide.pdf"]["status"] == "indexed"
    assert docs["page.html"]["status"] == "failed" and docs["page.html"]["reason"]

    assert client.delete("/api/admin/documents/charte/pacte.md", headers=auth).status_code == 200
    assert not (corpus / "charte" / "pacte.md").exists()
    assert client.delete("/api/admin/documents/../secret", headers=auth).status_code == 404
    client.post("/api/admin/refresh", headers=auth)
    status = _wait(client, auth)
    removed = {d["source"]: d["status"] for d in status["report"]["documents"]}
    assert removed["charte/pacte.md"] == "removed"

    reports = client.get("/api/admin/reports", params={"last": 2}, headers=auth).json()["reports"]
    assert len(reports) == 2 and any(
        d["status"] == "removed" for d in reports[0]["documents"]
    )  # newest first
    fb = client.get("/api/admin/feedback", headers=auth).json()["feedback"]
    assert fb[0]["comment"] == "trop court" and fb[0]["useful"] is False


def _wait(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    for _ in range(200):
        status = client.get("/api/admin/refresh", headers=auth).json()
        if not status["running"]:
            return dict(status)
        time.sleep(0.05)
    raise AssertionError("the refresh did not end")


def test_tokens() -> None:
    assert not token_ok("", "") and not token_ok(None, TOKEN) and not token_ok(TOKEN, "")
    assert token_ok(TOKEN, TOKEN) and not token_ok(TOKEN + "x", TOKEN)
    with pytest.raises(AllianceError):
        check_token_strength("court")
    check_token_strength(TOKEN)
    with pytest.raises(ConfigError):
        admin_router(StaffConsole.__new__(StaffConsole), "")
