"""``corpus/sources.toml``: optional metadata per file and the web pages to index.

::

    [files."recits/histoire.md"]
    title = "Histoire du RAMEAU"
    kind = "recit"
    date = "2021-05-01"

    [[web]]
    url = "https://www.example.org/guide-des-alliances"
    kind = "boite-a-outils"
    title = "Guide des alliances (en ligne)"   # optional, like date

A missing manifest is an empty one. A broken one raises ``ConfigError`` naming the problem; the
refresh reports it and goes on without it (one bad line never stops staff from refreshing).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from assistant.errors import ConfigError
from assistant.settings import KINDS

MANIFEST_NAME = "sources.toml"
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass(frozen=True)
class Override:
    """Metadata staff set for one document; empty fields keep what the loader found."""

    title: str = ""
    kind: str = ""
    date: str = ""

    def __bool__(self) -> bool:
        return bool(self.title or self.kind or self.date)


@dataclass(frozen=True)
class WebSource:
    """One web page to fetch and index under its URL."""

    url: str
    meta: Override


@dataclass
class Manifest:
    files: dict[str, Override] = field(default_factory=dict)
    web: list[WebSource] = field(default_factory=list)


def load_manifest(corpus_dir: Path) -> Manifest:
    """Read ``corpus_dir/sources.toml`` (absent: empty manifest); ConfigError when invalid."""
    path = corpus_dir / MANIFEST_NAME
    if not path.is_file():
        return Manifest()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{MANIFEST_NAME} illisible : {exc}") from exc
    unknown = set(data) - {"files", "web"}
    if unknown:
        raise ConfigError(f"{MANIFEST_NAME} : section inconnue {sorted(unknown)} (files, web)")
    files_table = data.get("files", {})
    if not isinstance(files_table, dict):
        raise ConfigError(f"{MANIFEST_NAME} : [files] doit être une table")
    files = {str(name): _override(f"files.{name!r}", entry) for name, entry in files_table.items()}
    web: list[WebSource] = []
    seen: set[str] = set()
    for i, entry in enumerate(data.get("web", [])):
        where = f"web[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(f"{MANIFEST_NAME} : {where} doit avoir une url")
        url = entry["url"].strip()
        parsed = urlparse(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ConfigError(f"{MANIFEST_NAME} : {where} url doit être http(s)://…, reçu {url!r}")
        if url in seen:
            raise ConfigError(f"{MANIFEST_NAME} : {where} url en double {url!r}")
        seen.add(url)
        rest = {k: v for k, v in entry.items() if k != "url"}
        web.append(WebSource(url, _override(where, rest)))
    return Manifest(files, web)


def _override(where: str, entry: Any) -> Override:
    if not isinstance(entry, dict):
        raise ConfigError(f"{MANIFEST_NAME} : {where} doit être une table")
    unknown = set(entry) - {"title", "kind", "date"}
    if unknown:
        raise ConfigError(f"{MANIFEST_NAME} : {where} clé inconnue {sorted(unknown)}")
    values = {k: entry.get(k, "") for k in ("title", "kind", "date")}
    if isinstance(values["date"], datetime.date):  # a bare TOML date: 2021-05-01
        values["date"] = values["date"].isoformat()[:10]
    if any(not isinstance(v, str) for v in values.values()):
        raise ConfigError(f"{MANIFEST_NAME} : {where} title, kind et date sont du texte")
    if values["kind"] and values["kind"] not in KINDS:
        raise ConfigError(
            f"{MANIFEST_NAME} : {where} kind {values['kind']!r} inconnu ; "
            f"choisir parmi {', '.join(KINDS)}"
        )
    if values["date"] and not _DATE.match(values["date"]):
        raise ConfigError(f"{MANIFEST_NAME} : {where} date attendue AAAA[-MM[-JJ]]")
    return Override(" ".join(values["title"].split()), values["kind"], values["date"])


def version_sha(content_sha: str, meta: Override) -> str:
    """The version a document is indexed at: its bytes, plus staff metadata when set, so
    changing a title or kind in the manifest re-indexes the document (same vectors kept when
    only the kind or date changes)."""
    if not meta:
        return content_sha
    raw = content_sha + json.dumps(asdict(meta), sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()
