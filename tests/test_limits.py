"""Issue 16, row by row: no request, upload or feedback can exhaust memory, disk or CPU, and a
delete never leaves the corpus. Each test is the reproduction of its row, against the app
``ui.server`` serves (body caps and security headers included); a real Chroma in tmp_path."""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import write_corpus
from fastapi.testclient import TestClient
from fixtures_docs import REPORT_PAGES, text_pdf_bytes
from langchain_core.embeddings import Embeddings
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, EncodedStreamObject, NameObject

from assistant import Assistant, Settings
from assistant.errors import DocumentError, LimitExceeded, RateLimited
from assistant.feedback import FeedbackLimits, FeedbackStore
from assistant.ingest.budget import TOO_COSTLY, ReadBudget, guarded_pages
from assistant.ingest.loaders.pdf import read_pdf
from assistant.staff import LoginThrottle, StaffConsole
from ui.admin_api import admin_router
from ui.api import IndexState, api_router, install_error_handlers
from ui.server import create_app

TOKEN = "jeton-de-test-assez-long-42"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = "Comment mesurer ce qu'apporte une coopération entre acteurs ?"

# A corpus written unlike the shipped one: short notes, a PDF, kinds in every folder.
NOTES = {
    "recits/cooperative.md": "# Une coopérative et sa commune\n\nLa coopérative laitière et la "
    "commune ont signé une convention de trois ans. Chaque trimestre, un comité mixte mesure "
    "ce que la coopération apporte : emplois maintenus, circuits courts, bénévoles formés.",
    "charte/engagements.md": "# Nos engagements\n\nNous nous engageons à partager les "
    "résultats, à nommer un référent par structure et à revoir la convention chaque année.",
    "boite-a-outils/indicateurs.md": "# Indicateurs d'une coopération\n\nPour mesurer une "
    "coopération entre acteurs, retenez trois indicateurs : la valeur créée pour le "
    "territoire, la satisfaction des partenaires et le coût de coordination.",
}


def nasty_pdf(pages: int = 20, decoded_mb: int = 70) -> bytes:
    """Row 6: small on disk, ``pages`` pages sharing one content stream of ``decoded_mb`` MB."""
    op = b"BT /F1 9 Tf 72 720 Td (partenariat territoire cooperation) Tj ET\n"
    stream = EncodedStreamObject()
    stream._data = zlib.compress(op * (decoded_mb * 2**20 // len(op)), 9)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    return _pdf_with_contents([stream] * pages)


def _pdf_with_contents(streams: list[EncodedStreamObject]) -> bytes:
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    refs: dict[int, Any] = {}
    for stream in streams:
        ref = refs.get(id(stream)) or writer._add_object(stream)
        refs[id(stream)] = ref
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Contents")] = ref
        fonts = DictionaryObject({NameObject("/F1"): font_ref})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _flate(text: bytes) -> EncodedStreamObject:
    stream = EncodedStreamObject()
    stream._data = zlib.compress(text)
    stream[NameObject("/Filter")] = ArrayObject([NameObject("/FlateDecode")])
    return stream


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = write_corpus(tmp_path / "corpus", NOTES)
    (root / "recits" / "bilan.pdf").write_bytes(
        text_pdf_bytes(REPORT_PAGES, title="Bilan des alliances")
    )
    return root


def _assistant(corpus: Path, embeddings: Embeddings, **limits: Any) -> Assistant:
    settings = Settings(
        corpus_dir=corpus, index_dir=corpus.parent / "index", admin_token=TOKEN, **limits
    )
    assistant = Assistant(settings, embedder=embeddings)
    assert not assistant.refresh().failed
    return assistant


@pytest.fixture
def client(corpus: Path, hash_embeddings: Embeddings) -> Iterator[TestClient]:
    assistant = _assistant(corpus, hash_embeddings)
    with TestClient(create_app(assistant.settings, assistant)) as c:
        yield c


def _error(resp: Any) -> str:
    body = resp.json()
    assert set(body) == {"error"}, body
    return str(body["error"])


# -- row 1: kinds -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/search", "/api/ask", "/api/ask/stream"])
def test_row1_a_long_kinds_list_is_refused_not_a_500(client: TestClient, path: str) -> None:
    field = "query" if path == "/api/search" else "question"
    flood = client.post(path, json={field: "partenariat", "kinds": ["recit"] * 40_000})
    assert flood.status_code == 413, flood.text  # 40,000 entries: over the body cap already
    assert "max_body_kb" in _error(flood)
    five = client.post(path, json={field: "partenariat", "kinds": ["recit"] * 5})
    assert five.status_code == 422 and "kinds" in _error(five) and "= 4" in _error(five)
    ok = client.post(path, json={field: "partenariat", "kinds": ["recit", "charte"]})
    assert ok.status_code == 200


def test_row1_the_library_asks_chroma_for_each_kind_once(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    assistant = _assistant(corpus, hash_embeddings)
    hits = assistant.search("coopérative commune", kinds=["recit"] * 40_000)
    assert hits and {h.kind for h in hits} == {"recit"}


# -- row 2: body size ---------------------------------------------------------------------------
def test_row2_a_big_body_is_refused_before_it_is_read(client: TestClient) -> None:
    big = json.dumps({"query": "partenariat", "kinds": ["recit"] * 4_000_000}).encode()
    assert len(big) > 36_000_000
    resp = client.post("/api/search", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "max_body_kb = 256" in _error(resp)


def test_row2_a_body_without_length_is_counted_as_it_comes(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "partenariat", "kinds": ['
        for _ in range(400):  # 400 x 8 KB, no Content-Length (chunked)
            yield b'"recit",' * 1000
        yield b'"recit"]}'

    resp = client.post("/api/ask", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413 and "max_body_kb" in _error(resp)
    assert client.get("/api/health").status_code == 200


def test_row2_the_cap_is_a_setting(corpus: Path, hash_embeddings: Embeddings) -> None:
    assistant = _assistant(corpus, hash_embeddings, max_body_kb=1)
    c = TestClient(create_app(assistant.settings, assistant))
    assert c.post("/api/search", json={"query": "x" * 2000}).status_code == 413
    assert c.post("/api/search", json={"query": "coopérative"}).status_code == 200


# -- row 3: feedback ----------------------------------------------------------------------------
def test_row3_feedback_blobs_are_refused_and_records_are_bounded(client: TestClient) -> None:
    blob = {
        "question": "Q ?",
        "answer": "R.",
        "useful": True,
        "citations": [{"text": "Z" * 200_000}] * 50,
    }
    assert client.post("/api/feedback", json=blob).status_code == 413
    hit = client.post("/api/search", json={"query": "coopérative"}).json()["hits"][0]
    ok = client.post(
        "/api/feedback",
        json={
            "question": "Q ?",
            "answer": "R. [1]",
            "useful": False,
            "citations": [hit],
            "comment": "trop vague",
        },
    )
    assert ok.status_code == 201
    rows = client.get("/api/admin/feedback", headers=AUTH).json()
    assert rows["feedback"][0]["citations"] == [
        {"source": hit["source"], "page": hit["page"], "chunk_id": hit["chunk_id"]}
    ]  # ids, not the passage's text
    assert rows["dropped"] == 0
    for field, size, limit in (
        ("comment", 1001, "max_feedback_comment_chars"),
        ("answer", 8001, "max_feedback_answer_chars"),
        ("question", 1001, "max_question_chars"),
    ):
        body = {"question": "Q ?", "answer": "R.", "useful": True, field: "é" * size}
        resp = client.post("/api/feedback", json=body)
        assert resp.status_code == 422 and limit in _error(resp), (field, resp.text)
    many = {
        "question": "Q ?",
        "answer": "R.",
        "useful": True,
        "citations": [{"source": "a.md"}] * 21,
    }
    resp = client.post("/api/feedback", json=many)
    assert resp.status_code == 422 and "max_feedback_citations" in _error(resp)


def test_row3_feedback_is_rate_limited_per_client(tmp_path: Path) -> None:
    now = [1000.0]
    store = FeedbackStore(tmp_path / "f.sqlite", FeedbackLimits(per_minute=3), clock=lambda: now[0])
    for i in range(3):
        store.add(f"Q{i} ?", "R.", [], useful=True, client="10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        store.add("Q3 ?", "R.", [], useful=True, client="10.0.0.1")
    assert "feedback_per_minute" in str(refused.value) and refused.value.retry_after > 0
    store.add("Q ?", "R.", [], useful=True, client="10.0.0.2")  # another client
    now[0] += 61
    store.add("Q4 ?", "R.", [], useful=True, client="10.0.0.1")  # the window slid
    assert store.count() == 5


def test_row3_the_api_answers_429_with_retry_after(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    assistant = _assistant(corpus, hash_embeddings, feedback_per_minute=2)
    c = TestClient(create_app(assistant.settings, assistant))
    body = {"question": "Q ?", "answer": "R.", "useful": True}
    assert [c.post("/api/feedback", json=body).status_code for _ in range(3)] == [201, 201, 429]
    last = c.post("/api/feedback", json=body)
    assert int(last.headers["retry-after"]) >= 1 and "réessayez" in _error(last)


def test_row3_the_store_keeps_the_newest_rows_and_counts_the_dropped(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    store = FeedbackStore(path, FeedbackLimits(max_rows=5, per_minute=1000))
    for i in range(12):
        store.add(
            f"Q{i} ?",
            "R" * 8000,
            [{"source": "a.md", "page": 1}] * 20,
            useful=i % 2 == 0,
            comment="c" * 1000,
            client="x",
        )
    assert store.count() == 5 and store.dropped() == 7
    assert [r.question for r in store.recent(10)] == [f"Q{i} ?" for i in range(11, 6, -1)]
    assert FeedbackStore(path).dropped() == 7  # durable
    size = path.stat().st_size
    for i in range(30):
        store.add(f"Q{i} ?", "R" * 8000, [], useful=True, comment="c" * 1000, client="x")
    assert path.stat().st_size <= max(size * 2, 200_000)  # bounded: pages are reused


# -- row 4: delete and writes act inside the corpus --------------------------------------------
def test_row4_deleting_a_symlink_removes_the_link_not_its_target(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    readme = corpus / "README.md"
    readme.write_text("# Lisez-moi\n\nCe fichier n'est pas indexé mais il est précieux. " * 5)
    (corpus / "charte" / "l.md").symlink_to("../README.md")
    assistant = _assistant(corpus, hash_embeddings)
    assert "charte/l.md" in assistant.indexed_sources()
    c = TestClient(create_app(assistant.settings, assistant))
    assert c.delete("/api/admin/documents/charte/l.md", headers=AUTH).status_code == 200
    assert readme.exists() and not (corpus / "charte" / "l.md").is_symlink()


def test_row4_uploads_never_write_through_a_link(
    corpus: Path, hash_embeddings: Embeddings, tmp_path: Path
) -> None:
    outside = tmp_path / "ailleurs"
    outside.mkdir()
    assistant = _assistant(corpus, hash_embeddings)
    (corpus / "recits").rename(corpus / "recits-vrai")
    (corpus / "recits").symlink_to(outside)  # a folder leaving the corpus
    target = outside / "cible.pdf"
    target.write_bytes(b"%PDF-1.4 ne pas toucher")
    (corpus / "boite-a-outils" / "lien.pdf").symlink_to(target)
    c = TestClient(create_app(assistant.settings, assistant))
    pdf = text_pdf_bytes(REPORT_PAGES)

    inside = c.put(
        "/api/admin/files/neuf.pdf", params={"folder": "recits"}, content=pdf, headers=AUTH
    )
    assert inside.status_code == 400 and "hors du corpus" in _error(inside)
    assert list(outside.iterdir()) == [target]
    replaced = c.put(
        "/api/admin/files/lien.pdf",
        params={"folder": "boite-a-outils", "replace": "true"},
        content=pdf,
        headers=AUTH,
    )
    assert replaced.status_code == 201
    assert target.read_bytes() == b"%PDF-1.4 ne pas toucher"  # the link was replaced, not it
    assert not (corpus / "boite-a-outils" / "lien.pdf").is_symlink()


# -- row 5: wrong admin tokens -----------------------------------------------------------------
def test_row5_wrong_tokens_lock_the_client_out_with_back_off(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    assistant = _assistant(corpus, hash_embeddings)
    now = [0.0]
    throttle = LoginThrottle(max_failures=5, lockout_s=30, max_lockout_s=100, clock=lambda: now[0])
    from fastapi import FastAPI

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(admin_router(StaffConsole(assistant), TOKEN, throttle), prefix="/api/admin")
    app.include_router(api_router(assistant, None, IndexState()), prefix="/api")
    c = TestClient(app)
    wrong = {"Authorization": "Bearer pas-le-bon-jeton-00000"}

    def status(headers: dict[str, str]) -> int:
        return c.get("/api/admin/documents", headers=headers).status_code

    assert [status(wrong) for _ in range(5)] == [401] * 5
    locked = c.get("/api/admin/documents", headers=AUTH)
    assert locked.status_code == 429 and locked.headers["retry-after"] == "30"
    assert "admin_max_failures" in _error(locked)
    now[0] += 31
    assert status(AUTH) == 200  # the right token, after the lockout, clears the record
    assert [status(wrong) for _ in range(5)] == [401] * 5
    now[0] += 31
    assert [status(wrong) for _ in range(5)] == [401] * 5  # a second lockout: twice as long
    assert c.get("/api/admin/documents", headers=AUTH).headers["retry-after"] == "60"
    now[0] += 61
    assert [status(wrong) for _ in range(5)] == [401] * 5
    assert c.get("/api/admin/documents", headers=AUTH).headers["retry-after"] == "100"  # max


def test_row5_the_shipped_server_throttles_the_admin_api(client: TestClient) -> None:
    wrong = {"Authorization": "Bearer pas-le-bon-jeton-00000"}
    codes = [client.get("/api/admin/documents", headers=wrong).status_code for _ in range(7)]
    assert codes == [401] * 5 + [429] * 2


# -- row 6: refresh budget per document --------------------------------------------------------
def test_row6_a_pdf_that_inflates_is_skipped_and_the_previous_version_kept(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    assistant = _assistant(corpus, hash_embeddings)
    before = {d.source: d for d in assistant.documents()}["recits/bilan.pdf"]
    data = nasty_pdf()
    assert len(data) < 400_000  # small on disk, 70 MB per page once decoded
    (corpus / "recits" / "bilan.pdf").write_bytes(data)
    (corpus / "recits" / "autre.md").write_text("# Autre\n\nUne coopérative de quartier. " * 9)
    report = {d.source: d for d in assistant.refresh().documents}
    bad = report["recits/bilan.pdf"]
    assert bad.status == "failed" and bad.reason.startswith(TOO_COSTLY), bad.reason
    assert "max_page_content_mb" in bad.reason and "version précédente conservée" in bad.reason
    assert bad.chunks_kept == before.chunks > 0
    assert report["recits/autre.md"].status == "added"
    assert any(h.source == "recits/bilan.pdf" for h in assistant.search("alliances", k=20))


def test_row6_each_bound_of_the_budget(tmp_path: Path) -> None:
    pages = [_flate(b"BT /F1 9 Tf 72 720 Td (cooperation locale) Tj ET\n" * 20_000)] * 6
    pdf = _pdf_with_contents(pages)  # 6 pages x ~1 MB decoded, each its own size
    with pytest.raises(DocumentError, match="max_pdf_pages"):
        read_pdf(pdf, "a.pdf", budget=ReadBudget(max_pages=5))
    with pytest.raises(DocumentError, match="max_document_content_mb"):
        read_pdf(pdf, "a.pdf", budget=ReadBudget(max_document_bytes=3 * 2**20))
    ticks = iter(range(0, 1000, 10))  # a clock that moves 10 s per look
    with pytest.raises(DocumentError, match="max_document_seconds") as slow:
        read_pdf(pdf, "a.pdf", budget=ReadBudget(max_seconds=25, clock=lambda: next(ticks)))
    assert slow.value.reason.startswith(TOO_COSTLY)
    within = guarded_pages(PdfReader(io.BytesIO(pdf)), "a.pdf", ReadBudget())
    assert len(list(within)) == 6


# -- row 7: security headers ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/staff/", "/docs"])
def test_row7_every_html_page_has_the_security_headers(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    scripts = re.findall(rb"<script[^>]*>", resp.content)
    assert scripts and all(f'nonce="{nonce.group(1)}"'.encode() in s for s in scripts)
    assert client.get(path).headers["content-security-policy"] != csp  # one nonce per response


def test_row7_a_served_html_document_keeps_its_sandbox(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    page = "<!DOCTYPE html><html><body><h1>Guide</h1><p>" + "Une coopération locale. " * 30
    (corpus / "boite-a-outils" / "guide.html").write_text(page + "</p></body></html>")
    assistant = _assistant(corpus, hash_embeddings)
    resp = TestClient(create_app(assistant.settings, assistant)).get(
        "/sources/boite-a-outils/guide.html"
    )
    assert resp.status_code == 200 and resp.headers["content-security-policy"].startswith("sandbox")
    assert resp.headers["x-frame-options"] == "DENY" and b"nonce" not in resp.content


# -- row 8: uploads and the public list ---------------------------------------------------------
def test_row8_replacing_a_file_needs_the_replace_flag(client: TestClient, corpus: Path) -> None:
    pdf = text_pdf_bytes(REPORT_PAGES)
    url = "/api/admin/files/bilan.pdf"
    again = client.put(url, params={"folder": "recits"}, content=pdf, headers=AUTH)
    assert again.status_code == 409 and "replace=true" in _error(again)
    assert (corpus / "recits" / "bilan.pdf").read_bytes() != pdf
    done = client.put(
        url, params={"folder": "recits", "replace": "true"}, content=pdf, headers=AUTH
    )
    assert done.status_code == 201 and (corpus / "recits" / "bilan.pdf").read_bytes() == pdf


@pytest.mark.parametrize(
    "raw",
    [
        "..%5cguide.pdf",
        "guide.pdf%0A",
        "guide.pdf%0D%0A",
        "%20guide.pdf",
        "guide.pdf%20",
        "a%5c..%5cguide.pdf",
        "guide%00.pdf",
        "guide%2Fpdf.pdf",
        "gu%09ide.pdf",
    ],
)
def test_row8_odd_names_are_refused_not_trimmed(client: TestClient, corpus: Path, raw: str) -> None:
    before = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*"))
    resp = client.put(f"/api/admin/files/{raw}", content=text_pdf_bytes(REPORT_PAGES), headers=AUTH)
    assert resp.status_code in (400, 404), (raw, resp.status_code, resp.text)
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*")) == before


def test_row8_the_public_list_shows_status_without_reasons(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    (corpus / "recits" / "casse.pdf").write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\n")  # no %%EOF
    settings = Settings(corpus_dir=corpus, index_dir=corpus.parent / "index", admin_token=TOKEN)
    assistant = Assistant(settings, embedder=hash_embeddings)
    assert assistant.refresh().failed
    c = TestClient(create_app(settings, assistant))
    public = {d["source"]: d for d in c.get("/api/documents").json()["documents"]}
    assert public["recits/casse.pdf"]["status"] == "failed"
    assert all("reason" not in d for d in public.values())
    staff = {
        d["source"]: d for d in c.get("/api/admin/documents", headers=AUTH).json()["documents"]
    }
    assert "tronqué" in staff["recits/casse.pdf"]["reason"]


# -- row 9: the question's length, not the history's --------------------------------------------
def test_row9_a_follow_up_after_a_long_question_is_answered(client: TestClient) -> None:
    long = (QUESTION + " ") * 20
    long = long[:988].rsplit(" ", 1)[0] + " ?"
    assert 980 < len(long) <= 990
    assert client.post("/api/ask", json={"question": long}).status_code == 200
    history = [{"role": "user", "content": long}, {"role": "assistant", "content": "Réponse."}]
    follow = client.post(
        "/api/ask", json={"question": "et pour une collectivité ?", "history": history}
    )
    assert follow.status_code == 200, follow.text
    too_long = client.post("/api/ask", json={"question": "é" * 1001, "history": history})
    assert too_long.status_code == 422 and "1000 caractères (1001)" in _error(too_long)


def test_history_is_bounded_in_turns_and_characters(client: TestClient) -> None:
    turns = [{"role": "user", "content": "Une question ?"}] * 21
    resp = client.post("/api/ask", json={"question": QUESTION, "history": turns})
    assert resp.status_code == 422 and "max_history_turns = 20" in _error(resp)
    heavy = [{"role": "assistant", "content": "x" * 15_000}] * 2
    resp = client.post("/api/ask/stream", json={"question": QUESTION, "history": heavy})
    assert resp.status_code == 422 and "max_history_chars = 20000" in _error(resp)


def test_limits_are_settings_read_from_the_environment() -> None:
    s = Settings.from_env({"ALLIANCE_MAX_BODY_KB": "64", "ALLIANCE_FEEDBACK_PER_MINUTE": "3"})
    assert (s.max_body_kb, s.feedback_per_minute, s.max_feedback_rows) == (64, 3, 5000)
    with pytest.raises(Exception, match="max_history_turns"):
        Settings(max_history_turns=0)
    err = LimitExceeded("trop", limit="max_body_kb", value=256, too_large=True)
    assert str(err) == "trop (limite max_body_kb = 256)" and err.too_large


# -- row 7 in Debian's chromium: the pages work under the policy, and it bites ------------------
@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_row7_the_pages_work_under_the_policy_in_chromium(
    corpus: Path, hash_embeddings: Embeddings
) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright
    from web_support import running_server

    assistant = _assistant(corpus, hash_embeddings)
    wait = 30_000
    with running_server(create_app(assistant.settings, assistant)) as base, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(base + "/")
        page.fill("#question textarea", QUESTION)
        page.click("#send")
        page.wait_for_selector("#citations input[type=radio]", timeout=wait)
        ran = page.evaluate(
            """() => { window.injected = false; const s = document.createElement('script');
                s.textContent = 'window.injected = true'; document.body.appendChild(s);
                return window.injected; }"""
        )
        assert ran is False  # an inline script without the nonce does not run

        page.goto(base + "/staff/")
        page.fill("input[type=password]", TOKEN)
        page.click("button:has-text('Se connecter')")
        page.wait_for_selector("text=Connecté.", timeout=wait)
        violations = [m for m in console if "Content Security Policy" in m]
        assert len(violations) == 1 and "inline script" in violations[0], violations

        framer = browser.new_page()
        framer.set_content(f'<iframe id="f" src="{base}/staff/"></iframe>')
        framer.wait_for_timeout(1500)
        frame = framer.frame_locator("#f")
        assert frame.locator("button").count() == 0  # refused: frame-ancestors 'none'
        browser.close()


def test_row7_json_and_head_answers(client: TestClient) -> None:
    api = client.get("/api/health")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers  # JSON: nothing to frame or run
    head = client.head("/")
    assert head.status_code in (200, 405)
    if head.status_code == 200:
        assert "frame-ancestors 'none'" in head.headers["content-security-policy"]
