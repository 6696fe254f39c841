"""What the staff console does, for the admin API and the UI tab alike: list documents with their
status, take an uploaded PDF/HTML (size and type checked), delete a document, run a refresh in
the background with its progress, read the last reports and the newcomers' feedback.

The console exists only with a token (``ALLIANCE_ADMIN_TOKEN``, read at the entry point):
``token_ok`` compares in constant time, and there is no default secret.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from assistant.core import Assistant
from assistant.errors import (
    AllianceError,
    ConfigError,
    ConflictError,
    DocumentError,
    IndexLockedError,
    LimitExceeded,
    RateLimited,
    UnsupportedDocument,
)
from assistant.feedback import FeedbackStore
from assistant.indexing.refresh import read_log
from assistant.indexing.served_files import corpus_path, inside_corpus
from assistant.settings import Settings
from assistant.types import RefreshReport

log = logging.getLogger(__name__)

UPLOAD_TYPES = {".pdf", ".html", ".htm"}
UPLOAD_FOLDERS = ("recits", "charte", "boite-a-outils", "")  # "" = corpus root (kind "autre")
MIN_TOKEN_CHARS = 16
_SAFE_NAME = re.compile(r"^[\w][\w .()'-]{0,150}$")
_HTML_START = re.compile(rb"<\s*(!doctype\s+html|html|head|body|article|main|p|h1)\b", re.I)


def token_ok(given: str | None, expected: str | None) -> bool:
    """True only when a token is configured and ``given`` equals it (constant-time)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def check_token_strength(token: str) -> None:
    """Refuse a token too short to be a secret (it guards uploads and deletions)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"ALLIANCE_ADMIN_TOKEN doit faire au moins {MIN_TOKEN_CHARS} caractères")


@dataclass
class _Failures:
    count: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Per-client lockout with back-off on wrong admin tokens: after ``max_failures`` wrong
    tokens a client is refused (even with the right one) for ``lockout_s`` seconds, doubled at
    each new lockout up to ``max_lockout_s``; a right token clears its record. At most
    ``max_clients`` clients are remembered (the least recent go first)."""

    max_failures: int = Settings.admin_max_failures
    lockout_s: float = Settings.admin_lockout_s
    max_lockout_s: float = Settings.admin_lockout_max_s
    clock: Callable[[], float] = time.monotonic
    max_clients: int = 10_000
    _clients: OrderedDict[str, _Failures] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginThrottle:
        return cls(settings.admin_max_failures, settings.admin_lockout_s,
                   settings.admin_lockout_max_s)  # fmt: skip

    def check(self, client: str) -> None:
        """RateLimited while ``client`` is locked out."""
        now = self.clock()
        with self._lock:
            state = self._clients.get(client)
            if state is not None and state.locked_until > now:
                wait = state.locked_until - now
                raise RateLimited(
                    f"trop de jetons refusés : accès bloqué {max(1, round(wait))} s "
                    f"(limite admin_max_failures = {self.max_failures})",
                    retry_after=wait,
                )

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            state = self._clients.pop(client, None) or _Failures()
            if state.lockouts and now - state.last > 2 * self.max_lockout_s:
                state = _Failures()  # a long quiet spell forgives
            state.count += 1
            state.last = now
            if state.count >= self.max_failures:
                state.count = 0
                state.lockouts += 1
                back_off = self.lockout_s * 2 ** min(state.lockouts - 1, 30)
                state.locked_until = now + min(back_off, self.max_lockout_s)
                log.warning("admin token: %s locked out for %.0f s", client,
                            state.locked_until - now)  # fmt: skip
            self._clients[client] = state
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


@dataclass
class RefreshRun:
    """The background refresh as the console shows it."""

    running: bool = False
    done: int = 0
    total: int = 0
    source: str = ""
    error: str = ""
    started_at: float = 0.0
    report: dict[str, Any] | None = None


class StaffConsole:
    """Staff actions over one Assistant (thread-safe; one background refresh at a time)."""

    def __init__(self, assistant: Assistant, feedback: FeedbackStore | None = None) -> None:
        self.assistant = assistant
        self.settings = assistant.settings
        self.feedback = feedback
        self._run = RefreshRun()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- documents -----------------------------------------------------------------------
    def documents(self) -> list[dict[str, Any]]:
        """Every catalogued document: source, title, kind, status, reason, chunks, pages."""
        return [
            {k: d[k] for k in ("source", "title", "kind", "status", "reason", "chunks", "pages")}
            for d in self.assistant.documents()
        ]

    def upload(self, name: str, data: bytes, folder: str = "", *, replace: bool = False) -> str:
        """Save an uploaded PDF or HTML file under ``corpus/<folder>/``; returns its source.
        The name is taken as given or refused (never trimmed or re-cut); an existing file is
        replaced only with ``replace=True`` (else ConflictError). Raises DocumentError with the
        reason staff see (bad name, folder or content), UnsupportedDocument for a wrong type,
        LimitExceeded for a file over ``max_file_mb``."""
        if folder not in UPLOAD_FOLDERS:
            raise DocumentError(
                name, f"dossier inconnu {folder!r} ; choisir parmi {UPLOAD_FOLDERS}"
            )
        if not _SAFE_NAME.fullmatch(name) or name.startswith(("_", ".")) or name != name.strip():
            raise DocumentError(
                name, "nom de fichier refusé (lettres, chiffres, - _ . ( ) ' espace ; rien d'autre)"
            )
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in UPLOAD_TYPES:
            raise UnsupportedDocument(
                name, f"type refusé ({suffix or 'sans extension'}) : PDF ou HTML"
            )
        limit = int(self.settings.max_file_mb * 2**20)
        if len(data) > limit:
            raise LimitExceeded(
                f"fichier trop volumineux ({len(data)} octets)",
                limit="max_file_mb",
                value=self.settings.max_file_mb,
                got=len(data),
                too_large=True,
            )
        if not data:
            raise DocumentError(name, "fichier vide")
        if suffix == ".pdf" and not data[:1024].lstrip().startswith(b"%PDF-"):
            raise UnsupportedDocument(name, "le contenu n'est pas un PDF")
        if suffix != ".pdf" and not _HTML_START.search(data[:4096]):
            raise UnsupportedDocument(name, "le contenu n'est pas une page HTML")
        corpus = self.settings.corpus_dir
        target_dir = corpus / folder if folder else corpus
        target_dir.mkdir(parents=True, exist_ok=True)
        if not inside_corpus(corpus, target_dir):  # a folder symlinked out of the corpus
            raise DocumentError(name, f"dossier {folder!r} hors du corpus")
        target = target_dir / name
        source = target.relative_to(corpus).as_posix()
        exists = target.is_symlink() or target.exists()
        if exists and not replace:
            raise ConflictError(
                f"{source} existe déjà : pour le remplacer, redéposez-le avec replace=true"
            )
        if target.is_dir() and not target.is_symlink():
            raise DocumentError(name, f"{source} est un dossier")
        tmp = target_dir / f".{name}.upload"
        tmp.unlink(missing_ok=True)
        # O_NOFOLLOW | O_EXCL: the temporary file is ours, not a link planted there
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.replace(target)  # a rename replaces a link itself, never its target
        log.info("staff %s %s (%d bytes)", "replaced" if exists else "uploaded", source,
                 len(data))  # fmt: skip
        return source

    def delete(self, source: str) -> None:
        """Delete a catalogued corpus file; the next refresh removes it from the index. A
        symlink is removed itself: its target, inside the corpus or not, is left alone."""
        # the refreshed catalogue, and the answering one while a new embedder's builds
        catalogue = set(self.assistant.store.documents()) | self.assistant.indexed_sources()
        path = corpus_path(self.settings.corpus_dir, catalogue, source)
        if path is None:
            raise DocumentError(source, "document inconnu")
        path.unlink()
        log.info("staff deleted %s", source)

    # -- refresh -------------------------------------------------------------------------
    def start_refresh(self) -> RefreshRun:
        """Start a refresh in the background; IndexLockedError if one is already running."""
        with self._lock:
            if self._run.running:
                raise IndexLockedError("un rafraîchissement est déjà en cours")
            self._run = RefreshRun(running=True, started_at=time.time())
            self._thread = threading.Thread(target=self._refresh, name="staff-refresh", daemon=True)
            self._thread.start()
            return RefreshRun(**asdict(self._run))

    def _progress(self, done: int, total: int, source: str) -> None:
        with self._lock:
            self._run.done, self._run.total, self._run.source = done, total, source

    def _refresh(self) -> None:
        report: RefreshReport | None = None
        error = ""
        try:
            report = self.assistant.refresh(progress=self._progress)
        except AllianceError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not leave the console "running" forever
            log.exception("staff refresh failed")
            error = f"erreur inattendue : {type(exc).__name__}"
        with self._lock:
            self._run.running = False
            self._run.error = error
            self._run.report = report.to_dict() if report is not None else None

    def refresh_status(self) -> RefreshRun:
        with self._lock:
            return RefreshRun(**asdict(self._run))

    def wait(self, timeout: float = 60.0) -> RefreshRun:
        """Wait for the background refresh to end (tests, scripts)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.refresh_status()

    # -- reading -------------------------------------------------------------------------
    def reports(self, last: int = 10) -> list[dict[str, Any]]:
        return read_log(self.settings.index_dir, max(1, min(last, 100)))

    def recent_feedback(self, last: int = 50) -> list[dict[str, Any]]:
        if self.feedback is None:
            return []
        return [asdict(f) for f in self.feedback.recent(max(1, min(last, 500)))]

    def feedback_dropped(self) -> int:
        """Feedback rows dropped, oldest first, to keep the store within its size."""
        return self.feedback.dropped() if self.feedback is not None else 0
