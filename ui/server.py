"""One FastAPI app for everything: the REST API under ``/api`` (OpenAPI page at ``/docs``), the
cited documents under ``/sources/`` and the Gradio page at ``/``.

    app = create_app(Settings())            # e.g. for uvicorn or a TestClient
    serve(Settings(), host="127.0.0.1", port=7860)   # builds the index if needed, then runs
"""

from __future__ import annotations

import logging
import mimetypes
import sys
import threading
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from assistant import __version__
from assistant.core import Assistant
from assistant.errors import AllianceError
from assistant.feedback import FeedbackStore
from assistant.indexing import owner_lock as ownership
from assistant.indexing.active import switch_notice
from assistant.indexing.paths import IndexPaths
from assistant.indexing.served_files import resolve_archive, resolve_source
from assistant.ingest.loaders import format_for
from assistant.settings import Settings
from assistant.staff import StaffConsole, check_token_strength
from ui.admin_api import admin_router
from ui.api import IndexState, api_router, install_error_handlers
from ui.app import CSS, build_ui
from ui.progress import progress_bar
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
    return FeedbackStore(IndexPaths(settings.index_dir).feedback)


def _media_type(name: str) -> str:
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    fmt = format_for(suffix)  # what the index reads is served as the loader registry says
    guessed = fmt.media_type if fmt else mimetypes.guess_type(name)[0]
    guessed = guessed or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") else "")


def _document_response(real: Path) -> FileResponse:
    """A cited file, inline; anything but a PDF is sandboxed (it runs and loads nothing)."""
    media_type = _media_type(real.name)
    headers = {"X-Content-Type-Options": "nosniff"}
    if media_type != "application/pdf":
        headers["Content-Security-Policy"] = _SANDBOX_CSP
    return FileResponse(
        real, media_type=media_type, headers=headers, content_disposition_type="inline"
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
    def source(path: str) -> FileResponse:
        real = resolve_source(settings.corpus_dir, assistant.indexed_sources(), path)
        if real is None:
            raise HTTPException(status_code=404)
        return _document_response(real)

    @app.get("/archive/{key}", include_in_schema=False)
    def archive(key: str) -> FileResponse:
        """The copy of a web page the index was built from (the page may have changed since,
        or be offline): served like a corpus document, sandboxed."""
        real = resolve_archive(IndexPaths(settings.index_dir).web, assistant.indexed_sources(), key)
        if real is None:
            raise HTTPException(status_code=404)
        return _document_response(real)

    mount = {
        "theme": theme(),
        "css": CSS,
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
    return gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        theme=theme(),
        css=CSS,
        ssr_mode=False,
        footer_links=[],
        show_error=False,
        pwa=False,
        mcp_server=False,
    )


def build_index(assistant: Assistant, state: IndexState) -> None:
    """Refresh the index, keeping ``state`` (shown in the UI and /api/health) up to date;
    ``state.start`` was called by whoever decided to build."""

    def progress(done: int, total: int, source: str) -> None:
        state.progress(done, total, source)
        progress_bar(done, total, source)

    try:
        report = assistant.refresh(progress=progress)
    except AllianceError as exc:
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
    state.finish()


def start_background_build(assistant: Assistant, state: IndexState) -> threading.Thread | None:
    """If the index is missing or behind the corpus, refresh it in a background thread and
    return that thread. Queries wait (503, « en construction ») only when nothing answers yet;
    a stale index, or the previous embedder's collection, answers during the refresh."""
    if not assistant.is_stale():
        return None
    try:
        answers = assistant.stats().chunks > 0
    except AllianceError:
        answers = False
    sys.stderr.write(
        "alliance: l'index est périmé, mise à jour en cours (il répond pendant ce temps)…\n"
        if answers
        else "alliance: l'index est absent, construction en cours…\n"
    )
    state.start(blocking=not answers)  # before the server answers: no query races a build
    thread = threading.Thread(
        target=build_index, args=(assistant, state), name="index-build", daemon=True
    )
    thread.start()
    return thread


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Run the app with uvicorn. If the index is missing or stale it is refreshed in the
    background: the page opens at once and says so until the refresh is over."""
    assistant = Assistant(settings)
    state = IndexState()
    app = create_app(settings, assistant, state=state)
    start_background_build(assistant, state)  # claims an embedded index (or fails: busy)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    ownership.advertise(settings.index_dir, f"http://{local}:{port}")  # for `alliance refresh`
    sys.stderr.write(f"alliance: interface sur http://{host}:{port}/  (API : /docs)\n")
    uvicorn.run(app, host=host, port=port, log_level="warning")
