"""FeedbackStore: durable rows with the question, the answer and its citations' ids."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.errors import QueryError
from assistant.feedback import MAX_COMMENT_CHARS, FeedbackStore
from assistant.types import Hit

HIT = Hit(
    text="Le Fonds ODD 17 finance le temps de coordination.",
    source="boite-a-outils/guide.pdf",
    title="Guide",
    kind="boite-a-outils",
    page=2,
    score=0.03,
    chunk_id="abc",
)


def test_add_then_recent_round_trips_newest_first(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "index" / "feedback.sqlite")
    first = store.add("Qui finance ?", "Le Fonds ODD 17. [1]", [HIT], useful=True)
    second = store.add("Et après ?", "Je n'ai pas trouvé.", [], useful=False, comment="  vague ")
    rows = store.recent(10)
    assert [r.id for r in rows] == [second, first]
    assert rows[0].useful is False and rows[0].comment == "vague" and rows[0].citations == []
    assert rows[1].useful is True and rows[1].answer == "Le Fonds ODD 17. [1]"
    # a bounded record: the citation's ids, not its text (issue 16)
    assert rows[1].citations == [{"source": HIT.source, "page": 2, "chunk_id": "abc"}]
    assert rows[1].created_at <= rows[0].created_at
    assert store.recent(1)[0].id == second and store.count() == 2


def test_rows_survive_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite"
    FeedbackStore(path).add("Q ?", "R.", [{"source": "a.md", "page": None}], useful=True)
    again = FeedbackStore(path).recent(5)
    assert len(again) == 1 and again[0].citations == [{"source": "a.md", "page": None}]


def test_untrusted_text_is_stored_verbatim(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")
    nasty = "'); DROP TABLE feedback; -- <script>alert(1)</script> é ✓"
    store.add(nasty, nasty, [], useful=False, comment=nasty)
    row = store.recent(1)[0]
    assert row.question == row.answer == row.comment == nasty and store.count() == 1


@pytest.mark.parametrize(
    ("question", "comment"), [("", ""), ("   ", ""), ("Q ?", "x" * (MAX_COMMENT_CHARS + 1))]
)
def test_invalid_feedback_is_refused(tmp_path: Path, question: str, comment: str) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")
    with pytest.raises(QueryError):
        store.add(question, "R.", [], useful=True, comment=comment)
    assert store.count() == 0


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")

    def write(n: int) -> None:
        for i in range(10):
            store.add(f"Q{n}-{i} ?", "R.", [HIT], useful=i % 2 == 0)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 40 and len({r.question for r in store.recent(100)}) == 40
