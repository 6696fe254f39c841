"""What the staff console does, for the admin API and the UI tab alike: list documents with their
status, take an uploaded PDF/HTML (size and type checked), delete a document, run a refresh in
the background with its progress, read the last reports and the newcomers' feedback.

The console exists only with a token (``ALLIANCE_ADMIN_TOKEN``, read at the entry point):
``token_ok`` compares in constant time, and there is no default secret.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from assistant.core import Assistant
from assistant.errors import (
    AllianceError,
    ConfigError,
    DocumentError,
    IndexLockedError,
    TooLargeError,
    UnsupportedTypeError,
)
from assistant.feedback import FeedbackStore
from assistant.indexing.refresh_log import read_log
from assistant.indexing.served_files import resolve_source
from assistant.ingest.loaders import UPLOAD_LABELS, UPLOAD_SUFFIXES, format_for
from assistant.types import RefreshReport

log = logging.getLogger(__name__)

UPLOAD_TYPES = UPLOAD_SUFFIXES  # the registry's formats that say how to check their content
UPLOAD_FOLDERS = ("recits", "charte", "boite-a-outils", "")  # "" = corpus root (kind "autre")
MIN_TOKEN_CHARS = 16
_SAFE_NAME = re.compile(r"^[\w][\w .()'-]{0,150}$")


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
            {
                k: getattr(d, k)
                for k in ("source", "title", "kind", "status", "reason", "chunks", "pages")
            }
            for d in self.assistant.documents()
        ]

    def upload(self, name: str, data: bytes, folder: str = "") -> str:
        """Save an uploaded PDF or HTML file under ``corpus/<folder>/``; returns its source.
        Raises DocumentError with the reason staff see (bad name, type, size or content)."""
        clean = PurePosixPath(name.replace("\\", "/")).name.strip()
        if folder not in UPLOAD_FOLDERS:
            raise DocumentError(
                name, f"dossier inconnu {folder!r} ; choisir parmi {UPLOAD_FOLDERS}"
            )
        if not _SAFE_NAME.match(clean) or clean.startswith(("_", ".")):
            raise DocumentError(name, "nom de fichier refusé (lettres, chiffres, - _ . espace)")
        suffix = PurePosixPath(clean).suffix.lower()
        fmt = format_for(suffix) if suffix in UPLOAD_TYPES else None
        if fmt is None or fmt.sniff is None:
            refused = f"type refusé ({suffix or 'sans extension'}) : {UPLOAD_LABELS}"
            raise UnsupportedTypeError(clean, refused)
        limit = int(self.settings.max_file_mb * 2**20)
        if len(data) > limit:
            raise TooLargeError(
                clean, f"fichier trop volumineux (limite {self.settings.max_file_mb} Mo)"
            )
        if not data:
            raise DocumentError(clean, "fichier vide")
        if not fmt.sniff(data):
            raise UnsupportedTypeError(clean, f"le contenu n'est pas {fmt.named}")
        target_dir = self.settings.corpus_dir / folder if folder else self.settings.corpus_dir
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / clean
        tmp = target_dir / f".{clean}.upload"
        tmp.write_bytes(data)
        tmp.replace(target)
        source = target.relative_to(self.settings.corpus_dir).as_posix()
        log.info("staff uploaded %s (%d bytes)", source, len(data))
        return source

    def delete(self, source: str) -> None:
        """Delete a catalogued corpus file; the next refresh removes it from the index."""
        # the refreshed catalogue, and the answering one while a new embedder's builds
        catalogue = set(self.assistant.store.documents()) | self.assistant.indexed_sources()
        path = resolve_source(self.settings.corpus_dir, catalogue, source)
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
