"""Which file may be served for a requested ``/sources/<path>``: only documents in the index.

The catalogue is the allow-list; on top of it we refuse anything that looks like traversal
(``..``, absolute paths, backslashes, percent-encoded or double-encoded forms) and files whose
real path (after symlinks) leaves the corpus folder. Every refusal is ``None`` (a 404 at the
edge), so a client cannot tell a missing file from a forbidden one.

>>> resolve_source(Path("corpus"), {"charte/pacte.md"}, "../etc/passwd") is None
True
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

log = logging.getLogger(__name__)

_MAX_DECODE_ROUNDS = 3


def _decoded_forms(requested: str) -> list[str]:
    """``requested`` and its successive percent-decodings (catches %2e%2e and %252e%252e)."""
    forms = [requested]
    for _ in range(_MAX_DECODE_ROUNDS):
        nxt = unquote(forms[-1])
        if nxt == forms[-1]:
            break
        forms.append(nxt)
    return forms


def _looks_unsafe(form: str) -> bool:
    """Empty, NUL, backslash, absolute (posix or drive), or with an empty, "." or ".." part."""
    if not form or "\x00" in form or "\\" in form or PurePosixPath(form).is_absolute():
        return True
    if len(form) > 1 and form[1] == ":":
        return True
    return any(part in {"", ".", ".."} for part in form.split("/"))


def resolve_source(
    corpus_dir: Path, indexed_sources: Collection[str], requested: str
) -> Path | None:
    """The file to serve for ``requested`` (a corpus-relative posix path), or None to refuse."""
    if any(_looks_unsafe(form) for form in _decoded_forms(requested)):
        log.info("refused source path %r (traversal or encoding)", requested)
        return None
    if requested not in indexed_sources:
        return None
    root = corpus_dir.resolve()
    candidate = corpus_dir / requested
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing file or symlink loop
        return None
    if not real.is_relative_to(root) or not real.is_file():
        log.warning("refused source %r: resolves outside the corpus (%s)", requested, real)
        return None
    return real
