"""Refresh progress for a person: one line on stderr, shared by ``alliance refresh`` and
``alliance serve`` when it builds the index."""

from __future__ import annotations

import sys


def progress_bar(done: int, total: int, source: str) -> None:
    """A one-line progress bar on stderr (every step on a terminal, start and end in a log).
    Used by ``alliance refresh`` and by ``alliance serve`` when it builds the index."""
    if not sys.stderr.isatty() and done not in (0, total):
        return
    width = 30
    filled = int(width * done / total) if total else width
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {source[:50]:<50}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
