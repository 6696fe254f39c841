"""Durable feedback on answers (useful or not, optional comment) for staff to review.

One SQLite file under the index folder; each row keeps the question, the answer and its
citations so a reviewer sees exactly what the user saw.

    store = FeedbackStore(settings.index_dir / "feedback.sqlite")
    store.add("Comment évaluer ?", answer.text, answer.citations, useful=False, comment="vague")
    store.recent(20)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import QueryError
from assistant.types import Hit

MAX_COMMENT_CHARS = 2000
MAX_TEXT_CHARS = 20000


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


def _citation_dict(c: Hit | Mapping[str, Any]) -> dict[str, Any]:
    return c.to_dict() if isinstance(c, Hit) else dict(c)


class FeedbackStore:
    """Append-only feedback table in its own SQLite file (safe across threads and processes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                """CREATE TABLE IF NOT EXISTS feedback (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    question TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL,
                    useful INTEGER NOT NULL, comment TEXT NOT NULL, created_at REAL NOT NULL)"""
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
    ) -> int:
        """Store one feedback and return its id. Raises QueryError on an empty question or an
        over-long comment (the UI and API show the message)."""
        if not question.strip():
            raise QueryError("la question du retour est vide")
        comment = comment.strip()
        if len(comment) > MAX_COMMENT_CHARS:
            raise QueryError(f"le commentaire dépasse {MAX_COMMENT_CHARS} caractères")
        payload = json.dumps([_citation_dict(c) for c in citations], ensure_ascii=False)
        with self._db() as db:
            cur = db.execute(
                "INSERT INTO feedback (question, answer, citations, useful, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    question[:MAX_TEXT_CHARS],
                    answer[:MAX_TEXT_CHARS],
                    payload,
                    int(bool(useful)),
                    comment,
                    time.time(),
                ),
            )
            return int(cur.lastrowid or 0)

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
