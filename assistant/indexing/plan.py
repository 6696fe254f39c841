"""Planning a refresh: what the corpus holds now, compared with the catalogue.

Every file is hashed, web pages listed in ``sources.toml`` are fetched (or not, for a staleness
check), same content under two names is grouped (one primary, the others aliases), a file whose
content moved to a new name is a rename, and files of an unsupported type are listed. The sha
of a document is its version: its bytes plus staff metadata if any. Nothing is written here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from assistant.indexing.catalogue import DocumentRecord, is_live
from assistant.indexing.hashing import file_sha256
from assistant.indexing.paths import IndexPaths
from assistant.ingest.loaders import SUPPORTED_SUFFIXES, discover
from assistant.ingest.manifest import (
    MANIFEST_NAME,
    Override,
    WebSource,
    load_manifest,
    version_sha,
)
from assistant.ingest.web_fetch import fetch_all
from assistant.settings import Settings


class SentenceWarmer(Protocol):
    """What the answerer needs of a chunk, computed when the chunk is written rather than at
    each question (``answering.sentence_cache.ChunkSentences``: its sentence vectors)."""

    def warm(self, chunks: Sequence[tuple[str, str]]) -> int:
        """(id, text) of chunks about to become searchable; returns how much was computed."""
        ...

    def forget(self, chunk_ids: Sequence[str]) -> int:
        """Chunks deleted from the collection."""
        ...

    def missing(self, chunk_ids: Sequence[str]) -> list[str]:
        """The chunks among ``chunk_ids`` never warmed (an index older than the warmer)."""
        ...


@dataclass
class Plan:
    """What the corpus holds now, grouped by content."""

    shas: dict[str, str] = field(default_factory=dict)  # source -> sha256
    paths: dict[str, Path] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # source -> reason
    aliases: dict[str, list[str]] = field(default_factory=dict)  # primary -> other names
    alias_of: dict[str, str] = field(default_factory=dict)  # other name -> primary
    renamed_from: dict[str, str] = field(default_factory=dict)  # new name -> old name
    unsupported: list[str] = field(default_factory=list)
    wrote: bool = False  # set by the refresh once a chunk was written or deleted
    overrides: dict[str, Override] = field(default_factory=dict)  # from sources.toml
    web: list[str] = field(default_factory=list)  # URLs listed in sources.toml
    notes: dict[str, str] = field(default_factory=dict)  # source -> what staff should know
    embedded: Callable[[int], None] | None = None  # progress.embedded, if the caller has one
    # progress.planned, if the caller has one: told how many passages a group will embed
    planned: Callable[[int], None] | None = None
    sentences: SentenceWarmer | None = None  # precomputes the answerer's sentence vectors


def plan_refresh(
    settings: Settings, known: dict[str, DocumentRecord], *, fetch: bool = True
) -> Plan:
    """The plan for bringing ``known`` (the catalogue) in line with ``settings.corpus_dir``.

    ``fetch=False`` leaves web pages unfetched (they are only listed in ``Plan.web``): what a
    staleness check can know without the network. A broken ``sources.toml`` raises ConfigError.
    """
    plan = Plan()
    corpus = settings.corpus_dir
    if not corpus.is_dir():
        return plan
    manifest = load_manifest(corpus)
    for path in discover(corpus):
        source = path.relative_to(corpus).as_posix()
        meta = manifest.files.get(source, Override())
        try:
            plan.shas[source] = version_sha(file_sha256(path), meta)
            plan.paths[source] = path
            plan.overrides[source] = meta
        except OSError as exc:
            plan.unreadable[source] = f"fichier illisible — {exc.strerror or exc}"
    plan.unsupported = unsupported_files(corpus)
    plan.web = [w.url for w in manifest.web]
    if fetch:
        _fetch_web(settings, plan, manifest.web)
    _group(plan, known)
    return plan


def is_current(plan: Plan, known: dict[str, DocumentRecord]) -> bool:
    """Whether a refresh following ``plan`` (made with ``fetch=False``) would change nothing
    known without fetching: no file added, changed, removed or unreadable, no web page listed
    but never fetched, no URL no longer listed."""
    if plan.unreadable:
        return False  # a refresh reports it
    if set(plan.shas) | set(plan.web) != set(known):
        return False
    return all(known[s].sha256 == sha for s, sha in plan.shas.items())


def _fetch_web(settings: Settings, plan: Plan, pages: list[WebSource]) -> None:
    fetched = fetch_all(
        plan.web, IndexPaths(settings.index_dir).web, max_bytes=int(settings.max_file_mb * 2**20)
    )
    for web in pages:
        got = fetched[web.url]
        if got.reason:
            plan.notes[web.url] = got.reason
        if got.path is None:
            plan.unreadable[web.url] = got.reason
            continue
        try:
            plan.shas[web.url] = version_sha(file_sha256(got.path), web.meta)
        except OSError as exc:
            plan.unreadable[web.url] = f"copie locale illisible — {exc.strerror or exc}"
            continue
        plan.paths[web.url] = got.path
        plan.overrides[web.url] = web.meta


def _group(plan: Plan, known: dict[str, DocumentRecord]) -> None:
    """Same content under several names: one primary (the one already indexed, if any), the
    others aliases; content that vanished under one name and appears under another: a rename."""
    groups: dict[str, list[str]] = {}
    for source, sha in sorted(plan.shas.items()):
        groups.setdefault(sha, []).append(source)
    gone = {
        r.sha256: s
        for s, r in sorted(known.items(), reverse=True)
        if s not in plan.shas and s not in plan.unreadable and is_live(r)
    }
    for sha, names in groups.items():
        indexed = [s for s in names if s in known and known[s].sha256 == sha and is_live(known[s])]
        primary = indexed[0] if indexed else names[0]
        others = [s for s in names if s != primary]
        if others:
            plan.aliases[primary] = others
            plan.alias_of.update({s: primary for s in others})
        if not indexed and sha in gone:
            plan.renamed_from[primary] = gone.pop(sha)


def unsupported_files(corpus: Path) -> list[str]:
    """Files staff dropped that ``discover`` skips for their type (same hidden-file rules)."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(corpus):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in filenames:
            path = Path(dirpath) / name
            if (
                name.startswith((".", "_"))
                or name.upper().startswith("README")
                or path.suffix.lower() in SUPPORTED_SUFFIXES
                or path.is_symlink()
                or (Path(dirpath) == corpus and name == MANIFEST_NAME)
            ):
                continue
            out.append(path.relative_to(corpus).as_posix())
    return sorted(out)
