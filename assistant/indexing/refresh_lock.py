"""One refresh at a time per index folder (searches are not blocked by it)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assistant.errors import IndexLockedError
from assistant.indexing.paths import IndexPaths


@contextmanager
def refresh_lock(index_dir: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock: a second refresh fails fast with IndexLockedError."""
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(IndexPaths(index_dir).refresh_lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLockedError(
                f"a refresh is already running on {index_dir} (lock held); try again later"
            ) from exc
        yield
    finally:
        os.close(fd)
