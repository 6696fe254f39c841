"""The two hashes a refresh decides with: a file's bytes, and what a vector depends on."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def reuse_key(page: Any, title: Any, text: str) -> str:
    """What a vector depends on besides the build: page, title and text (not the file name)."""
    raw = f"{page or 0}\x1f{title or ''}\x1f{text}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def chunk_key(meta: dict[str, Any], text: str) -> str:
    """``reuse_key`` of a chunk given its metadata."""
    return reuse_key(meta.get("page"), meta.get("title"), text)
