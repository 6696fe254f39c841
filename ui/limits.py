"""Two ASGI middlewares around the whole app: every request body is capped before anything
parses it, and every HTML page carries the security headers.

    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, settings=settings)

Body caps (``Settings``): ``max_file_mb`` for uploads (``/api/admin/files/…`` and the staff
console's file upload), ``max_body_kb`` for the rest of ``/api``, ``max_ui_body_kb`` for the
chat page's own requests. A declared ``Content-Length`` over the cap is refused at once; a body
sent without one is counted as it arrives and refused when it passes the cap. Either way the
answer is a 413 ``{"error": ...}`` naming the limit, and the route never sees the body.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.settings import Settings

_UPLOAD_PATHS = ("/api/admin/files/",)
# A refused body is read and dropped up to this much, so that the client, still sending, gets
# the 413 instead of a connection reset; beyond it the connection is just closed.
_DRAIN_BYTES = 8 * 2**20
_UPLOAD_SUFFIX = "/gradio_api/upload"

# The strictest policy the Gradio page works under (checked in chromium, tests/test_limits.py):
# scripts only from this origin or inline with this response's nonce (no 'unsafe-inline' for
# scripts, so an injected <script> does not run); 'unsafe-eval' because Gradio 6 evaluates its
# HTML components' templates and js_on_load with new Function(); its components set inline
# styles, hence 'unsafe-inline' for styles only. Nothing may frame the pages.
_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob: data:; "
    "connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
_STATIC_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes its cap; a 413 with the limit's name (FastAPI
    lets HTTPExceptions through its body parsing, so the API's handler answers it)."""

    def __init__(self, limit: str, value: float) -> None:
        unit = "Mo" if limit == "max_file_mb" else "Ko"
        super().__init__(
            status_code=413,
            detail=f"corps de requête trop volumineux (limite {limit} = {value:g} {unit})",
        )


@dataclass(frozen=True)
class _Cap:
    name: str
    value: float
    bytes: int


class BodyLimit:
    """Caps every HTTP request body by path (see the module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.upload = _Cap("max_file_mb", settings.max_file_mb, int(settings.max_file_mb * 2**20))
        self.api = _Cap("max_body_kb", settings.max_body_kb, settings.max_body_kb * 1024)
        self.ui = _Cap("max_ui_body_kb", settings.max_ui_body_kb, settings.max_ui_body_kb * 1024)

    def cap_for(self, path: str) -> _Cap:
        if path.startswith(_UPLOAD_PATHS) or path.endswith(_UPLOAD_SUFFIX):
            return self.upload
        if path == "/api" or path.startswith("/api/"):
            return self.api
        return self.ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > cap.bytes:
            if declared <= _DRAIN_BYTES:
                await _drain(receive)
            await _refuse(send, BodyTooLarge(cap.name, cap.value))
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap.bytes:
                    if message.get("more_body", False):
                        await _drain(receive)  # before the 413 is sent (bounded)
                    raise BodyTooLarge(cap.name, cap.value)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # not turned into a response on the way (e.g. Gradio)
            if started:
                raise
            await _refuse(send, exc)


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a refused body, at most ``_DRAIN_BYTES``."""
    dropped = 0
    while dropped <= _DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps({"error": exc.detail}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *_STATIC_HEADERS.items(),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """``nosniff`` on every response; on every HTML page also a CSP (unless the route set its
    own, like the sandboxed ``/sources/`` pages), ``frame-ancestors 'none'`` and
    ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``. Inline ``<script>`` tags of
    the page get this response's nonce: an injected one has none and does not run."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def send_with_headers(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = _Headers(message.get("headers", []))
                headers.setdefault(b"x-content-type-options", b"nosniff")
                if not headers.is_html():
                    await send({**message, "headers": headers.items})
                    return
                for key, value in _STATIC_HEADERS.items():
                    headers.setdefault(key, value)
                if headers.get(b"content-security-policy") is None:
                    headers.set(b"content-security-policy", _CSP.format(nonce=nonce).encode())
                    if scope.get("method") != "HEAD" and message.get("status") != 304:
                        start = {**message, "headers": headers.items}  # body gets the nonce
                        return
                await send({**message, "headers": headers.items})
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = _add_nonce(b"".join(chunks), nonce)
            headers = _Headers(start["headers"])
            headers.set(b"content-length", str(len(body)).encode())
            await send({**start, "headers": headers.items})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_with_headers)


def _add_nonce(html: bytes, nonce: str) -> bytes:
    """``<script`` -> ``<script nonce="…"`` for the page's own inline and module scripts."""
    return html.replace(b"<script", f'<script nonce="{nonce}"'.encode())


class _Headers:
    def __init__(self, raw: Any) -> None:
        self.items: list[tuple[bytes, bytes]] = [(bytes(k), bytes(v)) for k, v in raw]

    def get(self, key: bytes) -> bytes | None:
        return next((v for k, v in self.items if k.lower() == key), None)

    def set(self, key: bytes, value: bytes) -> None:
        self.items = [(k, v) for k, v in self.items if k.lower() != key] + [(key, value)]

    def setdefault(self, key: bytes, value: bytes) -> None:
        if self.get(key) is None:
            self.items.append((key, value))

    def is_html(self) -> bool:
        return (self.get(b"content-type") or b"").lower().startswith(b"text/html")
