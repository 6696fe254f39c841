"""Durable feedback on answers (useful or not, optional comment) for staff to review.

One SQLite file under the index folder. Each row is a bounded record: the question, the answer,
the ids of its citations (source, page, chunk id; not their text), the vote and a short
comment. Every field has a limit (``FeedbackLimits``, from ``Settings``), a client may send so
many per minute, and past ``max_rows`` the oldest rows are dropped first (and counted).

    store = FeedbackStore(settings.index_dir / "feedback.sqlite", FeedbackLimits.from_settings(s))
    store.add("Comment évaluer ?", answer.text, answer.citations, useful=False, comment="vague")
    store.recent(20)
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import LimitExceeded, QueryError, RateLimited
from assistant.settings import Settings
from assistant.types import Hit

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 1000  # what a question may be (retrieval.hybrid.MAX_QUERY_CHARS)
MAX_COMMENT_CHARS = Settings.max_feedback_comment_chars
_CITATION_KEYS = ("source", "page", "chunk_id")
_MAX_SOURCE_CHARS = 1000  # a corpus path or a URL
_MAX_ID_CHARS = 200
_MAX_CLIENTS = 10_000  # clients remembered by a rate limiter (the least recent go first)


@dataclass(frozen=True)
class FeedbackLimits:
    """What one feedback may hold, how often a client may send one, how many rows are kept."""

    max_question_chars: int = MAX_QUESTION_CHARS
    max_answer_chars: int = Settings.max_feedback_answer_chars
    max_comment_chars: int = MAX_COMMENT_CHARS
    max_citations: int = Settings.max_feedback_citations
    per_minute: int = Settings.feedback_per_minute
    max_rows: int = Settings.max_feedback_rows

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackLimits:
        return cls(
            max_answer_chars=settings.max_feedback_answer_chars,
            max_comment_chars=settings.max_feedback_comment_chars,
            max_citations=settings.max_feedback_citations,
            per_minute=settings.feedback_per_minute,
            max_rows=settings.max_feedback_rows,
        )


@dataclass
class RateLimiter:
    """At most ``per_window`` events per client in any ``window_s`` seconds (sliding window);
    remembers at most ``max_clients`` clients, forgetting the least recent first."""

    per_window: int
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    max_clients: int = _MAX_CLIENTS
    _seen: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hit(self, client: str, what: str = "requêtes") -> None:
        """Count one event for ``client``; RateLimited if it is one too many."""
        now = self.clock()
        with self._lock:
            times = self._seen.pop(client, None) or deque()
            while times and now - times[0] >= self.window_s:
                times.popleft()
            self._seen[client] = times
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
            if len(times) >= self.per_window:
                wait = self.window_s - (now - times[0])
                raise RateLimited(
                    f"trop de {what} : {self.per_window} par minute au plus "
                    f"(limite feedback_per_minute) ; réessayez dans {max(1, round(wait))} s",
                    retry_after=max(1.0, wait),
                )
            times.append(now)


@dataclass(frozen=True)
class Feedback:
    """One stored feedback row."""

    id: int
    question: str
    answer: str
    citations: list[dict[str, Any]]
    useful: bool
    comment: str
    created_at: float


def citation_ids(c: Hit | Mapping[str, Any]) -> dict[str, Any]:
    """What a row keeps of a citation: its source, page and chunk id (never its text)."""
    given = c.to_dict() if isinstance(c, Hit) else c
    out: dict[str, Any] = {}
    for key in _CITATION_KEYS:
        if key not in given:
            continue
        value = given[key]
        if key == "page":
            out[key] = value if isinstance(value, int) and not isinstance(value, bool) else None
        else:
            limit = _MAX_SOURCE_CHARS if key == "source" else _MAX_ID_CHARS
            text = str(value)
            if len(text) > limit:
                raise LimitExceeded(
                    f"citation : {key} trop long ({len(text)} caractères)",
                    limit=f"{key} ≤ {limit} caractères",
                    value=limit,
                    got=len(text),
                )
            out[key] = text
    return out


class FeedbackStore:
    """Feedback table in its own SQLite file (safe across threads and processes), at most
    ``limits.max_rows`` rows: the oldest go first, counted in ``dropped()``."""

    def __init__(
        self,
        path: Path,
        limits: FeedbackLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.limits = limits or FeedbackLimits()
        self.limiter = RateLimiter(self.limits.per_minute, clock=clock)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                """CREATE TABLE IF NOT EXISTS feedback (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    question TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL,
                    useful INTEGER NOT NULL, comment TEXT NOT NULL, created_at REAL NOT NULL)"""
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS feedback_meta (key TEXT PRIMARY KEY, value INTEGER)"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(
        self,
        question: str,
        answer: str,
        citations: Sequence[Hit | Mapping[str, Any]],
        useful: bool,
        comment: str = "",
        client: str | None = None,
    ) -> int:
        """Store one feedback and return its id. Raises QueryError on an empty question,
        LimitExceeded on a field over its limit, RateLimited when ``client`` (an address; None:
        not rate-limited, e.g. the chat page's own calls) sent too many this minute."""
        lim = self.limits
        if not question.strip():
            raise QueryError("la question du retour est vide")
        comment = comment.strip()
        _bounded("la question", question, lim.max_question_chars, "max_question_chars")
        _bounded("la réponse", answer, lim.max_answer_chars, "max_feedback_answer_chars")
        _bounded("le commentaire", comment, lim.max_comment_chars, "max_feedback_comment_chars")
        if len(citations) > lim.max_citations:
            raise LimitExceeded(
                f"trop de citations ({len(citations)})",
                limit="max_feedback_citations",
                value=lim.max_citations,
                got=len(citations),
            )
        payload = json.dumps([citation_ids(c) for c in citations], ensure_ascii=False)
        if client is not None:
            self.limiter.hit(client, "retours")
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO feedback (question, answer, citations, useful, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (question, answer, payload, int(bool(useful)), comment, time.time()),
            )
            row_id = int(cur.lastrowid or 0)
            self._drop_oldest(db)
            return row_id

    def _drop_oldest(self, db: sqlite3.Connection) -> None:
        """Keep the newest ``max_rows`` rows; count the others in ``feedback_meta``."""
        cut = db.execute(
            "SELECT id FROM feedback ORDER BY id DESC LIMIT 1 OFFSET ?", (self.limits.max_rows,)
        ).fetchone()
        if cut is None:
            return
        dropped = db.execute("DELETE FROM feedback WHERE id <= ?", (cut[0],)).rowcount
        db.execute(
            "INSERT INTO feedback_meta (key, value) VALUES ('dropped', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (dropped,),
        )
        log.info("feedback store full (%d rows): dropped the %d oldest", self.limits.max_rows,
                 dropped)  # fmt: skip

    def dropped(self) -> int:
        """How many rows were dropped, oldest first, to stay within ``max_rows``."""
        with self._db() as db:
            row = db.execute("SELECT value FROM feedback_meta WHERE key = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def recent(self, n: int = 50) -> list[Feedback]:
        """The ``n`` latest feedback rows, newest first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, question, answer, citations, useful, comment, created_at "
                "FROM feedback ORDER BY id DESC LIMIT ?",
                (max(0, n),),
            ).fetchall()
        return [Feedback(r[0], r[1], r[2], json.loads(r[3]), bool(r[4]), r[5], r[6]) for r in rows]

    def count(self) -> int:
        with self._db() as db:
            return int(db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])


def _bounded(what: str, text: str, limit: int, name: str) -> None:
    if len(text) > limit:
        raise LimitExceeded(
            f"{what} du retour dépasse {limit} caractères ({len(text)})",
            limit=name,
            value=limit,
            got=len(text),
        )
