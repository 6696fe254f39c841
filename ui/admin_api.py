"""The staff console's REST routes (``/api/admin``), reachable only with the admin token.

    if token:  # ALLIANCE_ADMIN_TOKEN, read at the entry point; no token, no routes
        app.include_router(admin_router(StaffConsole(assistant, feedback), token),
                           prefix="/api/admin")   # before api_router: its catch-all is a 404

Every route needs ``Authorization: Bearer <token>``; without it the answer is 401 and nothing
is done. Errors use the API's ``{"error": ...}`` shape (see ``install_error_handlers``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from assistant.errors import ConfigError, DocumentError, TooLargeError, UnsupportedTypeError
from assistant.staff import StaffConsole, token_ok

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


def admin_router(console: StaffConsole, token: str) -> APIRouter:
    """Admin routes over ``console``, guarded by ``token`` (must be non-empty)."""
    if not token:
        raise ConfigError("admin routes need a token (ALLIANCE_ADMIN_TOKEN); none is set")

    def authorized(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token_ok(given.strip(), token):
            log.warning(
                "admin request refused from %s", request.client.host if request.client else "?"
            )
            raise HTTPException(status_code=401, detail="jeton d'administration requis")

    router = APIRouter(tags=["admin"], dependencies=[Depends(authorized)])

    @router.get("/documents", summary="Documents du corpus et leur statut")
    def documents() -> dict[str, Any]:
        return {"documents": console.documents()}

    @router.put("/files/{name}", summary="Déposer un PDF ou une page HTML", status_code=201)
    async def upload(name: str, request: Request, folder: str = "") -> dict[str, Any]:
        limit = int(console.settings.max_file_mb * 2**20)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise HTTPException(status_code=413, detail="fichier trop volumineux")
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > limit:
                raise HTTPException(status_code=413, detail="fichier trop volumineux")
        try:
            source = console.upload(name, bytes(body), folder)
        except DocumentError as exc:
            raise HTTPException(status_code=_upload_status(exc), detail=exc.reason) from exc
        return {"source": source}

    @router.delete("/documents/{source:path}", summary="Supprimer un document du corpus")
    def delete(source: str) -> dict[str, Any]:
        try:
            console.delete(source)
        except DocumentError as exc:
            raise HTTPException(status_code=404, detail=exc.reason) from exc
        return {"deleted": source, "note": "retiré de l'index au prochain rafraîchissement"}

    @router.post("/refresh", summary="Lancer un rafraîchissement", status_code=202)
    def start_refresh() -> dict[str, Any]:
        return asdict(console.start_refresh())  # IndexLockedError -> 503 with its message

    @router.get("/refresh", summary="Avancement du rafraîchissement en cours ou dernier")
    def refresh_status() -> dict[str, Any]:
        return asdict(console.refresh_status())

    @router.get("/reports", summary="Les derniers rapports de rafraîchissement")
    def reports(last: int = 10) -> dict[str, Any]:
        return {"reports": console.reports(last)}

    @router.get("/feedback", summary="Les derniers retours des utilisateurs")
    def feedback(last: int = 50) -> dict[str, Any]:
        return {"feedback": console.recent_feedback(last)}

    return router


def _upload_status(exc: DocumentError) -> int:
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, UnsupportedTypeError):
        return 415
    return 400
