"""The staff console's REST routes (``/api/admin``), reachable only with the admin token.

    if token:  # ALLIANCE_ADMIN_TOKEN, read at the entry point; no token, no routes
        app.include_router(admin_router(StaffConsole(assistant, feedback), token),
                           prefix="/api/admin")   # before api_router: its catch-all is a 404

Every route needs ``Authorization: Bearer <token>``; without it the answer is 401 and nothing
is done. A client that sends ``admin_max_failures`` wrong tokens is locked out (429 with
``Retry-After``, even with the right token) for ``admin_lockout_s``, doubled at each new
lockout. Errors use the API's ``{"error": ...}`` shape (see ``install_error_handlers``), their
status chosen by type (413 too large, 409 exists, 415 wrong type, 400 refused).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from assistant.errors import ConfigError, DocumentError, LimitExceeded
from assistant.staff import LoginThrottle, StaffConsole, token_ok

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


def admin_router(
    console: StaffConsole, token: str, throttle: LoginThrottle | None = None
) -> APIRouter:
    """Admin routes over ``console``, guarded by ``token`` (must be non-empty) and by
    ``throttle`` (default: from the console's settings)."""
    if not token:
        raise ConfigError("admin routes need a token (ALLIANCE_ADMIN_TOKEN); none is set")
    guard = throttle or LoginThrottle.from_settings(console.settings)

    def authorized(request: Request) -> None:
        client = request.client.host if request.client else "?"
        guard.check(client)  # RateLimited -> 429 while locked out
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token_ok(given.strip(), token):
            log.warning("admin request refused from %s", client)
            guard.failed(client)
            raise HTTPException(status_code=401, detail="jeton d'administration requis")
        guard.succeeded(client)

    router = APIRouter(tags=["admin"], dependencies=[Depends(authorized)])

    @router.get("/documents", summary="Documents du corpus et leur statut")
    def documents() -> dict[str, Any]:
        return {"documents": console.documents()}

    @router.put("/files/{name}", summary="Déposer un PDF ou une page HTML", status_code=201)
    async def upload(
        name: str, request: Request, folder: str = "", replace: bool = False
    ) -> dict[str, Any]:
        """``replace=true`` to overwrite a file of that name (else 409)."""
        limit = int(console.settings.max_file_mb * 2**20)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(console, int(declared))
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > limit:
                raise _too_large(console, len(body))
        # errors by type: LimitExceeded 413, ConflictError 409, UnsupportedDocument 415,
        # DocumentError 400 (see ui.api.status_for)
        source = console.upload(name, bytes(body), folder, replace=replace)
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
        return {"feedback": console.recent_feedback(last), "dropped": console.feedback_dropped()}

    return router


def _too_large(console: StaffConsole, size: int) -> LimitExceeded:
    return LimitExceeded(
        f"fichier trop volumineux ({size} octets)",
        limit="max_file_mb",
        value=console.settings.max_file_mb,
        got=size,
        too_large=True,
    )
