"""One FastAPI app for everything: the REST API under ``/api`` (OpenAPI page at ``/docs``), the
cited documents under ``/sources/`` and the Gradio page at ``/``.

    app = create_app(Settings())            # e.g. for uvicorn or a TestClient
    serve(Settings(), host="127.0.0.1", port=7860)   # builds the index if needed, then runs
"""

from __future__ import annotations

import logging
import mimetypes
import os
import sys
import threading
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from assistant import __version__
from assistant.core import Assistant
from assistant.errors import AllianceError, DocumentError
from assistant.feedback import FeedbackLimits, FeedbackStore
from assistant.indexing import owner_lock as ownership
from assistant.indexing.active import switch_notice
from assistant.indexing.paths import IndexPaths
from assistant.indexing.served_files import resolve_archive, resolve_source, source_url
from assistant.ingest.loaders import format_for, load_document
from assistant.runtime import apply_thread_policy
from assistant.settings import Settings
from assistant.staff import StaffConsole, check_token_strength
from ui.admin_api import admin_router
from ui.api import IndexState, api_router, install_error_handlers
from ui.app import CSS, PAGE_JS, build_ui
from ui.limits import BodyLimit, SecurityHeaders
from ui.progress import RefreshProgress
from ui.render import TEXT_ROUTE, document_text_page, esc, is_html_file, is_markdown, safe_markdown
from ui.staff import build_staff_ui, staff_tab

log = logging.getLogger(__name__)

SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial")
MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")

# Documents come from outside: a served HTML page must run nothing and load nothing.
_SANDBOX_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
DOCS_STATIC = "/docs-static"


def theme() -> gr.themes.Base:
    """The default look with system fonts only: the page loads nothing from another origin."""
    return gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(MONO_FONTS))


def feedback_store(settings: Settings) -> FeedbackStore:
    limits = FeedbackLimits.from_settings(settings)
    return FeedbackStore(IndexPaths(settings.index_dir).feedback, limits)


def _media_type(name: str) -> str:
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    fmt = format_for(suffix)  # what the index reads is served as the loader registry says
    guessed = fmt.media_type if fmt else mimetypes.guess_type(name)[0]
    guessed = guessed or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")


def _document_response(real: Path) -> Response:
    """A cited file, inline; anything but a PDF is sandboxed (it runs and loads nothing). A
    Markdown file is shown rendered (emphasis, lists; no HTML, link or image of its own)."""
    media_type = _media_type(real.name)
    headers = {"X-Content-Type-Options": "nosniff"}
    if media_type != "application/pdf":
        headers["Content-Security-Policy"] = _SANDBOX_CSP
    if is_markdown(real.name):
        return HTMLResponse(_markdown_page(real), headers=headers)
    return FileResponse(
        real, media_type=media_type, headers=headers, content_disposition_type="inline"
    )


def _markdown_page(real: Path) -> str:
    text = real.read_text(encoding="utf-8", errors="replace")
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(real.name)}</title><style>body{{max-width:46rem;margin:1.5rem auto;"
        "padding:0 1rem;font:1rem/1.55 system-ui,sans-serif;color:#1f2937}</style></head>"
        f"<body>{safe_markdown(text)}</body></html>"
    )


def _offline_docs_assets() -> Path | None:
    """Swagger UI files shipped by the ``fastapi-offline`` package, if installed: /docs then
    works without internet (FastAPI's default page loads Swagger UI from a CDN)."""
    try:
        import fastapi_offline
    except ImportError:
        log.info("fastapi-offline not installed: /docs loads Swagger UI from its CDN")
        return None
    static = Path(fastapi_offline.__file__).parent / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def _add_offline_docs(app: FastAPI, assets: Path) -> None:
    app.mount(DOCS_STATIC, StaticFiles(directory=assets), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Alliance API — documentation",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon.png",
        )


def create_app(
    settings: Settings,
    assistant: Assistant | None = None,
    *,
    state: IndexState | None = None,
    feedback: FeedbackStore | None = None,
) -> FastAPI:
    """The whole web app over one Assistant (built from ``settings`` if not given)."""
    assistant = assistant or Assistant(settings)
    state = state or IndexState()
    feedback = feedback or feedback_store(settings)
    docs_assets = _offline_docs_assets()
    app = FastAPI(
        title="Alliance API",
        version=__version__,
        description="Recherche et réponses citées sur le corpus « faire alliance ».",
        docs_url=None if docs_assets else "/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    if docs_assets:
        _add_offline_docs(app, docs_assets)
    staff: gr.Blocks | None = None
    staff_builder = None
    if settings.admin_token:  # no token, no console: not over the UI, not over the API
        check_token_strength(settings.admin_token)
        console = StaffConsole(assistant, feedback)
        # before the public router: its catch-all answers 404 for unknown /api paths
        app.include_router(admin_router(console, settings.admin_token), prefix="/api/admin")
        staff = build_staff_ui(console, settings.admin_token)
        token = settings.admin_token

        def staff_tab_builder() -> object:
            return staff_tab(console, token)

        staff_builder = staff_tab_builder
    app.include_router(api_router(assistant, feedback, state), prefix="/api")

    @app.get("/sources/{path:path}", include_in_schema=False)
    def source(path: str) -> Response:
        real = resolve_source(settings.corpus_dir, assistant.indexed_sources(), path)
        if real is None:
            raise HTTPException(status_code=404)
        return _document_response(real)

    @app.get(TEXT_ROUTE + "{path:path}", include_in_schema=False)
    def indexed_text(path: str) -> Response:
        """A corpus HTML file's main text as indexed (no cookie banner, no menu), sandboxed,
        with a link to the original under /sources/."""
        real = resolve_source(settings.corpus_dir, assistant.indexed_sources(), path)
        if real is None or not is_html_file(path):
            raise HTTPException(status_code=404)
        try:
            loaded = load_document(
                real, settings.corpus_dir, max_bytes=int(settings.max_file_mb * 2**20)
            )
        except DocumentError as exc:
            raise HTTPException(status_code=404) from exc
        text = "\n\n".join(p.page_content for p in loaded.pages)
        page = document_text_page(loaded.title, text, source_url(path))
        headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": _SANDBOX_CSP}
        return HTMLResponse(page, headers=headers)

    @app.get("/archive/{key}", include_in_schema=False)
    def archive(key: str) -> Response:
        """The copy of a web page the index was built from (the page may have changed since,
        or be offline): served like a corpus document, sandboxed."""
        real = resolve_archive(IndexPaths(settings.index_dir).web, assistant.indexed_sources(), key)
        if real is None:
            raise HTTPException(status_code=404)
        return _document_response(real)

    mount = {
        "i18n": page_i18n(),
        "theme": theme(),
        "css": CSS,
        "js": PAGE_JS,
        "ssr_mode": False,
        "footer_links": [],
        "show_error": False,
        "pwa": False,
        "mcp_server": False,
    }
    if staff is not None:
        staff.queue(default_concurrency_limit=1)
        app = gr.mount_gradio_app(app, staff, path="/staff", **mount)
    blocks = build_ui(assistant, feedback, state, staff_builder)
    blocks.queue(default_concurrency_limit=4)
    app = gr.mount_gradio_app(app, blocks, path="/", **mount)
    app.add_middleware(FrenchPage)  # inner: its inline script then gets the CSP nonce
    app.add_middleware(SecurityHeaders)  # CSP, frame-ancestors, nosniff on every HTML page
    app.add_middleware(BodyLimit, settings=settings)  # outermost: before anything parses
    return app


# -- the page speaks French to browsers and screen readers --------------------------------------
# Gradio picks its own words (« Terminé » read by screen readers, buttons) from the browser's
# language and writes <html lang="en">: the page is French whatever the browser says.
_GRADIO_PAGES = ("/", "/staff", "/staff/")
_FORCE_FRENCH = (
    b"<script>try{for(const[k,v]of[['language','fr-FR'],['languages',['fr-FR','fr']]])"
    b"Object.defineProperty(navigator,k,{get:()=>v})}catch(e){}</script>"
)
# Words Gradio's French catalogue lacks (it would fall back to the raw key).
GRADIO_FRENCH = {
    "common.complete": "Réponse terminée",
    "common.error": "Erreur",
    "common.loading": "Chargement…",
    "common.copy_message": "Copier le message",
    "common.copied_message": "Message copié",
}


def page_i18n() -> gr.I18n:
    return gr.I18n(fr=dict(GRADIO_FRENCH))


def frenchify(html: bytes) -> bytes:
    """``<html lang="fr">`` and a browser language of French for Gradio's own words."""
    html = html.replace(b'lang="en"', b'lang="fr"', 1)
    return html.replace(b"<head>", b"<head>" + _FORCE_FRENCH, 1)


class FrenchPage:
    """ASGI middleware: rewrites only the Gradio pages' HTML (``/``, ``/staff``); documents
    served under ``/sources`` and every other response pass through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] not in _GRADIO_PAGES
        ):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            if any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                body = frenchify(body)
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def build_index(assistant: Assistant, state: IndexState, *, warm: bool = False) -> None:
    """Refresh the index, keeping ``state`` (shown in the UI and /api/health) up to date;
    ``state.start`` was called by whoever decided to build. ``warm``: a first build, which
    answers from the early index (BM25 over the corpus as read) while the vectors are written
    (``Assistant.warm_start``); queries wait only while that index is read (seconds)."""
    answers = warm and assistant.warm_start()
    lexical = answers and assistant.search_mode() == "lexical"
    if lexical:
        sys.stderr.write(
            f"alliance: réponses disponibles ({assistant.stats().documents} documents, "
            "recherche lexicale) ; elles s'amélioreront quand les vecteurs seront calculés\n"
        )
    if answers:
        state.unblock()
    progress = _StateProgress(state)
    try:
        report = assistant.refresh(progress=progress)
    except AllianceError as exc:
        progress.close()
        log.error("index build failed: %s", exc)
        sys.stderr.write(f"alliance: la construction de l'index a échoué : {exc}\n")
        state.finish(error=str(exc))
        return
    sys.stderr.write(
        f"alliance: index prêt — {report.count('added')} ajoutés, {report.count('updated')} mis à "
        f"jour, {len(report.failed)} en échec, en {report.seconds:.1f} s\n"
    )
    for line in switch_notice(report):
        sys.stderr.write(f"alliance: {line}\n")
    if lexical and assistant.search_mode() == "hybrid":
        sys.stderr.write("alliance: index complet, les réponses passent en recherche hybride\n")
    state.finish()


class _StateProgress(RefreshProgress):
    """The log's progress lines, and the state the page and /api/health show."""

    def __init__(self, state: IndexState) -> None:
        super().__init__()
        self.state = state

    def __call__(self, done: int, total: int, source: str) -> None:
        self.state.progress(done, total, source)
        super().__call__(done, total, source)


def start_background_build(assistant: Assistant, state: IndexState) -> threading.Thread | None:
    """If the index is missing or behind the corpus, refresh it in a background thread and
    return that thread. ``Assistant.prepare_refresh`` decides how: queries wait (503, « en
    construction ») only when nothing answers yet, until a first build's early index is read;
    a stale index, or the previous embedder's collection, answers during the refresh."""
    start = assistant.prepare_refresh()
    if start == "current":
        return None
    warm = start == "warm"
    sys.stderr.write(
        "alliance: l'index est absent ou incomplet, construction en cours…\n"
        if warm
        else "alliance: l'index est périmé, mise à jour en cours (il répond pendant ce temps)…\n"
    )
    # before the server answers: no query races a build; a first build answers once its
    # early index is read
    state.start(blocking=warm)
    thread = threading.Thread(
        target=build_index,
        args=(assistant, state),
        kwargs={"warm": warm},
        name="index-build",
        daemon=True,
    )
    thread.start()
    return thread


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Run the app with uvicorn. If the index is missing or stale it is refreshed in the
    background: the page opens at once and says so until the refresh is over."""
    apply_thread_policy(settings)  # no-op after the CLI's; before the embedder loads
    assistant = Assistant(settings)
    state = IndexState()
    app = create_app(settings, assistant, state=state)
    start_background_build(assistant, state)  # claims an embedded index (or fails: busy)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    ownership.advertise(settings.index_dir, f"http://{local}:{port}")  # for a second terminal
    sys.stderr.write(
        f"alliance: interface sur http://{local}:{port}/  (API : http://{local}:{port}/docs ; "
        "Ctrl-C pour arrêter)\n"
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    _Server(config, settings.index_dir).run()


class _Server(uvicorn.Server):
    """uvicorn, forgetting ``index/owner.json`` when it stops: on Ctrl-C or SIGTERM uvicorn
    re-raises the signal once shut down (no ``finally`` runs after), so it is done here."""

    def __init__(self, config: uvicorn.Config, index_dir: Path) -> None:
        super().__init__(config)
        self.index_dir = index_dir

    async def shutdown(self, sockets: Any = None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            forget_owner_info(self.index_dir)


def forget_owner_info(index_dir: Path) -> None:
    """Remove ``owner.json`` if this process wrote it (the lock itself dies with the process)."""
    if ownership.holder(index_dir).get("pid") == os.getpid():
        (index_dir / ownership.INFO_NAME).unlink(missing_ok=True)
