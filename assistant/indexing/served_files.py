"""Which file may be served for a requested ``/sources/<path>`` (a corpus file) or
``/archive/<key>`` (the kept copy of a web page): only documents in the index.

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
from urllib.parse import quote, unquote, urlparse

from assistant.ingest.web_fetch import WebCache, cache_key

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


def corpus_path(corpus_dir: Path, indexed_sources: Collection[str], requested: str) -> Path | None:
    """The path *inside* the corpus to delete or overwrite for ``requested``, or None to refuse.

    Unlike ``resolve_source`` (which serves the file a link points to), a write acts on the
    name itself: a symlink is removed as a link, never followed to its target. Its folders must
    really be inside the corpus (a symlinked folder leaving it is refused)."""
    if any(_looks_unsafe(form) for form in _decoded_forms(requested)):
        log.info("refused corpus path %r (traversal or encoding)", requested)
        return None
    if requested not in indexed_sources:
        return None
    path = corpus_dir / requested
    if not path.is_symlink() and not path.is_file():
        return None
    if not inside_corpus(corpus_dir, path.parent):
        log.warning("refused corpus path %r: its folder leaves the corpus", requested)
        return None
    return path


def inside_corpus(corpus_dir: Path, folder: Path) -> bool:
    """True when ``folder`` (after symlinks) is the corpus folder or one of its sub-folders."""
    try:
        return folder.resolve(strict=True).is_relative_to(corpus_dir.resolve(strict=True))
    except (OSError, RuntimeError):
        return False


def is_web(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def source_url(source: str, page: int | None = None) -> str:
    """Where a client opens a cited document: the web page itself, or ``/sources/<path>``
    (``#page=N`` opens a PDF at that page)."""
    if is_web(source):
        return source
    url = "/sources/" + quote(source, safe="/")
    if page and source.lower().endswith(".pdf"):
        url += f"#page={page}"
    return url


def archive_url(source: str, page: int | None = None) -> str | None:
    """For a web page: ``/archive/<key>``, the copy the index was built from (still there when
    the page has changed or gone offline); None for a corpus file."""
    if not is_web(source):
        return None
    url = f"/archive/{cache_key(source)}"
    if page and urlparse(source).path.lower().endswith(".pdf"):
        url += f"#page={page}"
    return url


def resolve_archive(web_dir: Path, indexed_sources: Collection[str], key: str) -> Path | None:
    """The kept copy of the indexed web page whose ``cache_key`` is ``key``, or None."""
    if len(key) != 24 or any(c not in "0123456789abcdef" for c in key):
        return None
    cache = WebCache(web_dir)
    for source in indexed_sources:
        if is_web(source) and cache_key(source) == key:
            return cache.copy(source)
    return None
