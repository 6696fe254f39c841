"""Fetch the web pages listed in ``sources.toml`` into a local copy the indexer reads.

Each page is fetched with httpx: a timeout, a size limit, a content-type check, at most
``MAX_REDIRECTS`` redirects, and a conditional request (ETag / Last-Modified) so an unchanged
page is not downloaded again (and, its copy unchanged, not re-embedded). The copy lives under
``index_dir/web/``: a page that goes offline keeps its last copy, still answerable, and is
reported as unreachable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from assistant.errors import FetchError
from assistant.ingest.loaders import FORMATS

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
MAX_REDIRECTS = 5
USER_AGENT = "Alliance-refresh/1.0 (+https://github.com/alliance)"
# What we can index, and the suffix the loaders expect for it.
CONTENT_TYPES = {t: f.suffixes[0] for f in FORMATS for t in f.web_types}


@dataclass(frozen=True)
class Fetched:
    """The outcome for one URL: the local copy to index (None: nothing to index) and, when
    something went wrong, a reason staff can read."""

    url: str
    path: Path | None
    outcome: str  # downloaded | not-modified | unreachable
    reason: str = ""


def cache_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


class WebCache:
    """Local copies of fetched pages: ``<key><suffix>`` plus ``<key>.json`` (url, validators)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def meta(self, url: str) -> dict[str, Any]:
        path = self.directory / f"{cache_key(url)}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("url") == url else {}

    def copy(self, url: str) -> Path | None:
        """The stored copy of ``url``, if any."""
        suffix = self.meta(url).get("suffix")
        if not isinstance(suffix, str):
            return None
        path = self.directory / f"{cache_key(url)}{suffix}"
        return path if path.is_file() else None

    def store(self, url: str, data: bytes, suffix: str, headers: httpx.Headers) -> Path:
        """Write the copy then its metadata, each atomically (a kill leaves one or the other
        version whole; stale validators only cost one more download)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = cache_key(url)
        old = self.copy(url)
        path = self.directory / f"{key}{suffix}"
        _atomic_write(path, data)
        meta = {
            "url": url,
            "suffix": suffix,
            "etag": headers.get("etag", ""),
            "last_modified": headers.get("last-modified", ""),
            "fetched_at": time.time(),
        }
        _atomic_write(self.directory / f"{key}.json", json.dumps(meta).encode())
        if old is not None and old != path:
            old.unlink(missing_ok=True)
        return path

    def prune(self, keep: Iterable[str]) -> None:
        """Remove copies of URLs no longer listed."""
        wanted = {cache_key(u) for u in keep}
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if path.name.split(".")[0] not in wanted:
                path.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def fetch_page(client: httpx.Client, cache: WebCache, url: str, *, max_bytes: int) -> Fetched:
    """Fetch ``url`` into ``cache``; on any failure fall back to the stored copy."""
    meta = cache.meta(url)
    copy = cache.copy(url)
    headers = {}
    if copy is not None:
        if meta.get("etag"):
            headers["If-None-Match"] = str(meta["etag"])
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = str(meta["last_modified"])
    try:
        with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 304 and copy is not None:
                return Fetched(url, copy, "not-modified")
            if response.status_code != 200:
                raise FetchError(f"HTTP {response.status_code}")
            suffix = _suffix(response.headers.get("content-type", ""))
            data = _read_limited(response, max_bytes)
    except FetchError as exc:
        return _unreachable(url, copy, meta, str(exc))
    except httpx.TooManyRedirects:
        return _unreachable(url, copy, meta, f"plus de {MAX_REDIRECTS} redirections")
    except httpx.TimeoutException:
        return _unreachable(url, copy, meta, "délai dépassé")
    except httpx.HTTPError as exc:
        return _unreachable(url, copy, meta, f"{type(exc).__name__}: {exc}")
    if not data:
        return _unreachable(url, copy, meta, "réponse vide")
    return Fetched(url, cache.store(url, data, suffix, response.headers), "downloaded")


def _suffix(content_type: str) -> str:
    mime = content_type.split(";")[0].strip().lower()
    if mime not in CONTENT_TYPES:
        raise FetchError(f"type de contenu non pris en charge ({mime or 'absent'})")
    return CONTENT_TYPES[mime]


def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"page trop volumineuse ({int(declared)} o > {max_bytes} o)")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"page trop volumineuse (> {max_bytes} o)")
        chunks.append(chunk)
    return b"".join(chunks)


def _unreachable(url: str, copy: Path | None, meta: dict[str, Any], why: str) -> Fetched:
    log.warning("web page %s unreachable: %s", url, why)
    if copy is None:
        return Fetched(url, None, "unreachable", f"page injoignable ({why})")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(meta.get("fetched_at", 0))))
    return Fetched(
        url, copy, "unreachable", f"page injoignable ({why}) : copie du {when} conservée"
    )


def fetch_all(
    urls: Iterable[str],
    cache_dir: Path,
    *,
    max_bytes: int,
    timeout: float = TIMEOUT_S,
) -> dict[str, Fetched]:
    """Fetch every URL (sequentially: a handful of pages per refresh) with one client."""
    cache = WebCache(cache_dir)
    urls = list(urls)
    if not urls:
        return {}
    with httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT},
    ) as client:
        return {url: fetch_page(client, cache, url, max_bytes=max_bytes) for url in urls}
