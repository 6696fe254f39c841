"""Refresh progress for a person, on stderr, shared by ``alliance refresh`` and ``alliance
serve`` when it builds the index.

On a terminal, one bar redrawn in place. In a log (``make run > run.log``, a service), one
line every few seconds, so a first build that spends minutes inside one document still shows
it is moving: documents and passages done, rate, time left; then a last line with totals. A
refresh over before the first line (nothing to do) prints none.

    with RefreshProgress() as progress:
        assistant.refresh(progress=progress)   # progress.embedded(n) is called per batch too
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

LOG_EVERY_S = 5.0
_BAR = 24


def duration(seconds: float) -> str:
    """« 45 s », « 3 min 20 s », « 1 h 05 min »."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _rate(passages: int, seconds: float) -> str:
    per_s = passages / seconds if seconds > 0 else 0.0
    return f"{per_s:.1f}".replace(".", ",") + "\u202fpassages/s"


class RefreshProgress:
    """A refresh's ``progress`` callable (see ``assistant.indexing.refresh.Progress``) that
    also counts embedded passages. ``tty`` defaults to whether ``stream`` is a terminal."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every_s: float = LOG_EVERY_S,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every_s = every_s
        self.clock = clock
        self.done = 0
        self.total = 0
        self.passages = 0
        self.queued = 0  # passages announced for embedding (``planned``), embedded or not
        self.source = ""
        self._started: float | None = None
        self._finished = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._drawn = 0.0
        self._ticks = 0

    # -- the refresh calls these ---------------------------------------------------------------
    def __call__(self, done: int, total: int, source: str) -> None:
        with self._lock:
            first = self._started is None
            if first:
                self._started = self.clock()
            self.done, self.total, self.source = done, total, source
            finished = done >= total
        if self.tty:
            self._draw(force=True)
        elif first and not finished:  # a refresh over in seconds prints nothing but its report
            self._ticker = threading.Thread(target=self._tick_loop, name="progress", daemon=True)
            self._ticker.start()
        if finished:
            self._finish()

    def planned(self, n: int) -> None:
        """``n`` more passages are about to be embedded (a group of documents read ahead)."""
        with self._lock:
            self.queued += n

    def embedded(self, n: int) -> None:
        with self._lock:
            self.passages += n
        if self.tty:
            self._draw()

    # -- what is shown -------------------------------------------------------------------------
    def elapsed(self) -> float:
        return 0.0 if self._started is None else self.clock() - self._started

    def remaining(self) -> float | None:
        """Seconds left (None before anything tells). Once passages are being embedded: the
        passages announced and not embedded yet, plus as many per document for the documents
        not reached, at the passage rate so far. The refresh reads documents ahead and embeds
        them in groups, so ``done`` runs ahead of the embedding: by documents alone, a first
        build said « encore environ 2 s » with 500 passages to go. Otherwise (nothing to
        embed): from the documents done so far."""
        with self._lock:
            done, total, passages, queued = self.done, self.total, self.passages, self.queued
        if done >= total:
            return None
        elapsed = self.elapsed()
        if queued and passages >= queued and done >= total - 1:
            return None  # every document read, every passage embedded: see ``finishing``
        if queued and passages and elapsed > 0:
            ahead = queued / max(done, 1) * (total - done)
            return (max(queued - passages, 0) + ahead) / (passages / elapsed)
        if queued or not done:
            return None
        return elapsed * (total - done) / done

    def finishing(self) -> bool:
        """Every document read and every announced passage embedded, the refresh not over:
        what is left is the answer sentences of the last documents (embedded once each so that
        answers embed none; ~45 s of a 2-minute first build of the shipped corpus), not
        counted in passages: no time is promised for it."""
        with self._lock:
            done, total, passages, queued = self.done, self.total, self.passages, self.queued
        return bool(queued) and passages >= queued and total - 1 <= done < total

    def line(self) -> str:
        """« index : 5/22 documents lus, 210/480 passages vectorisés (3,1 passages/s), 1 min
        10 s écoulées, encore environ 4 min 05 s — en cours : recits/x.pdf » (documents read,
        passages embedded of those announced)."""
        with self._lock:
            done, total, passages, source = self.done, self.total, self.passages, self.source
        elapsed = self.elapsed()
        if done >= total:
            return (
                f"alliance: index : {total}/{total} documents, {passages} passages vectorisés "
                f"en {duration(elapsed)} ({_rate(passages, elapsed)})"
            )
        left = self.remaining()
        if self.finishing():
            eta = "reste à préparer les phrases des réponses"
        elif left is not None:
            eta = f"encore environ {duration(left)}"
        else:
            eta = "temps restant estimé après les premiers passages"
        current = f" — en cours : {source}" if source else ""
        with self._lock:
            queued = self.queued
        of = f"/{queued}" if queued > passages else ""
        return (
            f"alliance: index : {done}/{total} documents lus, {passages}{of} passages vectorisés "
            f"({_rate(passages, elapsed)}), {duration(elapsed)} écoulées, {eta}{current}"
        )

    def bar(self) -> str:
        with self._lock:
            done, total, passages, source = self.done, self.total, self.passages, self.source
        filled = int(_BAR * done / total) if total else _BAR
        left = self.remaining()
        eta = f", ~{duration(left)}" if left is not None else ""
        head = f"[{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total} · {passages} passages{eta}"
        return f"{head}  {source[:40]:<40}"

    # -- output --------------------------------------------------------------------------------
    def tick(self) -> None:
        """Write the current line (log mode; the ticker thread calls it every ``every_s``)."""
        if not self._finished:
            self._ticks += 1
            self._write(self.line())

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()

    def _draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._drawn < 0.2:
            return
        self._drawn = now
        self.stream.write("\r" + self.bar())
        self.stream.flush()

    def _finish(self) -> None:
        if self._finished:
            return
        self._stop.set()
        if self.tty:
            self.stream.write("\n")
        if self.tty or self._ticks or self.passages:
            self._write(self.line())
        self._finished = True

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Stop the ticker (a refresh that raised never reports its last document)."""
        self._stop.set()
        if self.tty and self._started is not None and not self._finished:
            self.stream.write("\n")
            self.stream.flush()
        self._finished = True

    def __enter__(self) -> RefreshProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
