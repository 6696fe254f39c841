"""Every file and folder under ``index_dir``, decided here and nowhere else.

index_dir/
  chroma/                  the embedded Chroma store (absent with a Chroma server)
  catalog.sqlite           the catalogue: per build, each document's indexed version
  lexical-<build>/         the persisted BM25 side of one build
  vectors-<build>.npz      a copy of the build's unit vectors for the exact scan (a cache)
  refresh-<build>.pending  present while a refresh of that build runs (a crash leaves it)
  refresh.lock             one refresh at a time
  refresh-log.jsonl        one JSON line per refresh report
  owner.lock, owner.json   which process holds an embedded index (``indexing.owner_lock``)
  web/                     the last fetched copy of each web page (``ingest.web_fetch``)
  feedback.sqlite          answers rated by users (``assistant.feedback``)
  sentences-<embedder>.sqlite  answer sentences' vectors (``answering.sentence_cache``)
  models/                  the assembled local model, unless ``model_cache_dir`` is set
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEB_DIR = "web"
OWNER_LOCK = "owner.lock"
OWNER_INFO = "owner.json"


@dataclass(frozen=True)
class IndexPaths:
    """The layout of one index folder."""

    root: Path

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def catalogue(self) -> Path:
        return self.root / "catalog.sqlite"

    def lexical(self, build_slug: str) -> Path:
        return self.root / f"lexical-{build_slug}"

    def vectors(self, build_slug: str) -> Path:
        return self.root / f"vectors-{build_slug}.npz"

    def pending(self, build_slug: str) -> Path:
        return self.root / f"refresh-{build_slug}.pending"

    @property
    def refresh_lock(self) -> Path:
        return self.root / "refresh.lock"

    @property
    def refresh_log(self) -> Path:
        return self.root / "refresh-log.jsonl"

    @property
    def web(self) -> Path:
        return self.root / WEB_DIR

    @property
    def feedback(self) -> Path:
        return self.root / "feedback.sqlite"

    def sentences(self, embedder_slug: str) -> Path:
        return self.root / f"sentences-{embedder_slug}.sqlite"

    @property
    def models(self) -> Path:
        return self.root / "models"
