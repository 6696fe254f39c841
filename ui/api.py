"""The REST API (``/api``): health, search, ask, documents, feedback. A thin translator over
``Assistant``: validated JSON in, JSON out, errors as ``{"error": "..."}`` with a 4xx/5xx status
and never a stack trace.

    app = FastAPI()
    app.include_router(api_router(assistant, feedback), prefix="/api")
    install_error_handlers(app)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant import __version__
from assistant.core import Assistant
from assistant.errors import (
    AllianceError,
    ConflictError,
    DocumentError,
    IndexLockedError,
    IndexNotReadyError,
    LimitExceeded,
    QueryError,
    RateLimited,
    RemoteError,
    TooLargeError,
    UnsupportedTypeError,
)
from assistant.feedback import FeedbackStore
from assistant.indexing.served_files import archive_url, source_url
from assistant.settings import KINDS, Settings
from assistant.types import Answer, Hit

log = logging.getLogger(__name__)

# Generous transport bounds (the body itself is capped at Settings.max_body_kb before it is
# parsed); ``check_kinds``, ``check_history`` and the Assistant apply the real rules, with French
# messages that name the limit.
_MAX_FIELD_CHARS = 20_000


# -- index state shared by the server, the API and the UI ---------------------------------------
@dataclass
class IndexState:
    """Whether the index is being built or refreshed (by the server at start-up) and how far
    along. ``blocking`` is False when an index already answers meanwhile (a refresh, or a new
    embedder's collection built while the previous one serves): queries then go on."""

    building: bool = False
    blocking: bool = True
    done: int = 0
    total: int = 0
    error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, blocking: bool = True) -> None:
        with self._lock:
            self.building, self.done, self.total, self.error = True, 0, 0, ""
            self.blocking = blocking

    def unblock(self) -> None:
        """Something answers now (the early index of a first build): queries go on."""
        with self._lock:
            self.blocking = False

    def progress(self, done: int, total: int, source: str = "") -> None:
        with self._lock:
            self.done, self.total = done, total

    def finish(self, error: str = "") -> None:
        with self._lock:
            self.building, self.error = False, error

    def check(self) -> None:
        """Raise IndexNotReadyError while a build runs with nothing to answer from, so queries
        get a clear 503."""
        if self.building and self.blocking:
            raise IndexNotReadyError(
                f"l'index est en cours de construction ({self.done}/{self.total} documents) ; "
                "réessayez dans un instant"
            )


# -- request models ---------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchRequest(_Strict):
    query: str = Field(max_length=_MAX_FIELD_CHARS, description="1 à 1000 caractères")
    k: int | None = Field(default=None, description="nombre de passages, 1..50 (défaut 5)")
    kinds: list[str] | None = Field(default=None, description="recit, charte, boite-a-outils...")


class Turn(_Strict):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=_MAX_FIELD_CHARS)


class AskRequest(_Strict):
    question: str = Field(max_length=_MAX_FIELD_CHARS, description="1 à 1000 caractères")
    history: list[Turn] | None = None
    kinds: list[str] | None = None


class FeedbackRequest(_Strict):
    question: str = Field(max_length=_MAX_FIELD_CHARS)
    answer: str = Field(max_length=_MAX_FIELD_CHARS)
    citations: list[dict[str, Any]] = Field(
        default_factory=list, description="source, page, chunk_id de chaque citation"
    )
    useful: bool
    comment: str = Field(default="", max_length=_MAX_FIELD_CHARS)


# -- limits ---------------------------------------------------------------------------------
def check_kinds(kinds: list[str] | None) -> None:
    """At most one entry per known kind (each unknown one is refused by the Assistant)."""
    if kinds is not None and len(kinds) > len(KINDS):
        raise LimitExceeded(
            f"trop de types de document ({len(kinds)}) ; choisir parmi {', '.join(KINDS)}",
            limit="kinds ≤ nombre de types connus",
            value=len(KINDS),
            got=len(kinds),
        )


def check_history(history: list[Turn] | None, settings: Settings) -> None:
    turns = history or []
    if len(turns) > settings.max_history_turns:
        raise LimitExceeded(
            f"historique trop long ({len(turns)} tours)",
            limit="max_history_turns",
            value=settings.max_history_turns,
            got=len(turns),
        )
    chars = sum(len(t.content) for t in turns)
    if chars > settings.max_history_chars:
        raise LimitExceeded(
            f"historique trop long ({chars} caractères)",
            limit="max_history_chars",
            value=settings.max_history_chars,
            got=chars,
        )


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


# -- response shaping -------------------------------------------------------------------------
def hit_payload(hit: Hit) -> dict[str, Any]:
    return {
        **hit.to_dict(),
        "url": source_url(hit.source, hit.page),
        "archive_url": archive_url(hit.source, hit.page),
    }


def answer_payload(answer: Answer) -> dict[str, Any]:
    return answer.to_dict(hit=hit_payload)  # the type's own shape, citations with links


def _iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds")


# -- router -----------------------------------------------------------------------------------
def api_router(
    assistant: Assistant,
    feedback: FeedbackStore | None = None,
    state: IndexState | None = None,
) -> APIRouter:
    """The ``/api`` routes over one Assistant (include it with ``prefix="/api"``)."""
    state = state or IndexState()
    settings = assistant.settings
    router = APIRouter(tags=["api"])

    @router.get("/health", summary="État du service et de l'index")
    def health() -> dict[str, Any]:
        if state.building and state.blocking:
            return {
                "status": "building",
                "documents": state.done,
                "chunks": 0,
                "embedder": assistant.settings.embedder,
                "version": __version__,
                "mode": assistant.search_mode(),
                "progress": {"done": state.done, "total": state.total},
            }
        stats = assistant.stats()
        out: dict[str, Any] = {
            "status": "ok" if stats.chunks else "empty",
            "documents": stats.documents,
            "chunks": stats.chunks,
            "embedder": stats.embedder,
            "version": __version__,
            "answerer": assistant.answerer_info(),
            # lexical: a first build answers from BM25 while its vectors are written
            "mode": assistant.search_mode(),
        }
        if stats.building is not None:  # a new build's collection, answering once complete
            out["building"] = asdict(stats.building)
        if state.building:  # a refresh while the index answers
            out["progress"] = {"done": state.done, "total": state.total}
        return out

    @router.post("/search", summary="Les passages les plus pertinents pour une requête")
    def search(req: SearchRequest) -> dict[str, Any]:
        state.check()
        check_kinds(req.kinds)
        hits = assistant.search(req.query, k=req.k, kinds=req.kinds)
        return {"hits": [hit_payload(h) for h in hits]}

    @router.post("/ask", summary="Une réponse citée (les relances utilisent l'historique)")
    def ask(req: AskRequest) -> dict[str, Any]:
        state.check()
        check_kinds(req.kinds)
        check_history(req.history, settings)
        history = [t.model_dump() for t in req.history or []]
        answer = assistant.ask(req.question, history=history, kinds=req.kinds)
        return answer_payload(answer)

    @router.post(
        "/ask/stream",
        summary="La même réponse en flux (server-sent events : delta*, puis answer)",
        response_class=StreamingResponse,
    )
    def ask_stream(req: AskRequest) -> StreamingResponse:
        state.check()
        check_kinds(req.kinds)
        check_history(req.history, settings)
        history = [t.model_dump() for t in req.history or []]
        # Retrieval runs here, so invalid queries become a JSON 4xx before the stream opens.
        parts = assistant.ask_stream(req.question, history=history, kinds=req.kinds)

        def events() -> Iterator[str]:
            for part in parts:
                if isinstance(part, Answer):
                    data = json.dumps(answer_payload(part), ensure_ascii=False)
                    yield f"event: answer\ndata: {data}\n\n"
                else:
                    delta = json.dumps({"text": part}, ensure_ascii=False)
                    yield f"event: delta\ndata: {delta}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @router.get("/documents", summary="Les documents indexés")
    def documents() -> dict[str, Any]:
        state.check()
        rows = []
        docs = assistant.documents()
        for d in docs:
            rows.append(
                {
                    "source": d.source,
                    "title": d.title,
                    "kind": d.kind,
                    "pages": d.pages,
                    "chunks": d.chunks,
                    "status": d.status,  # not the reason: internal, for staff only
                    "indexed_at": _iso(d.indexed_at),
                    "url": source_url(d.source),
                    "archive_url": archive_url(d.source),
                }
            )
        last = max((d.indexed_at or 0 for d in docs), default=0)
        return {"documents": rows, "last_refresh": _iso(last)}

    if feedback is not None:
        store = feedback

        @router.post("/feedback", summary="Enregistrer un avis sur une réponse", status_code=201)
        def add_feedback(req: FeedbackRequest, request: Request) -> dict[str, Any]:
            fid = store.add(
                req.question,
                req.answer,
                req.citations,
                req.useful,
                req.comment,
                client=client_of(request),
            )
            return {"id": fid}

    @router.api_route(
        "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    def not_found(rest: str) -> None:
        """Unknown /api paths answer JSON here, not the page mounted at ``/``."""
        raise HTTPException(status_code=404)

    return router


# -- errors -----------------------------------------------------------------------------------
def status_for(exc: AllianceError) -> int:
    """The HTTP status of an error, by its type."""
    if isinstance(exc, LimitExceeded):
        return 413 if exc.too_large else 422
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, UnsupportedTypeError):
        return 415
    if isinstance(exc, QueryError):
        return 422
    if isinstance(exc, IndexNotReadyError | IndexLockedError):
        return 503
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, RemoteError):
        return 502
    return 400


def _validation_message(exc: RequestValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            return "JSON invalide : le corps de la requête n'a pas pu être lu"
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'corps'} : {err.get('msg', 'invalide')}")
    return "requête invalide — " + " ; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Every error becomes ``{"error": "..."}``: 422 for bad input, 503 while the index is not
    ready, 500 (logged, without trace) for bugs."""

    async def on_alliance(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AllianceError)
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        message = exc.reason if isinstance(exc, DocumentError) else str(exc)
        return JSONResponse({"error": message}, status_code=status_for(exc), headers=headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "erreur"
        if exc.status_code == 404:
            detail = "introuvable"
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "erreur interne du serveur"}, status_code=500)

    app.add_exception_handler(AllianceError, on_alliance)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_bug)
