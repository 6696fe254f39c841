"""Which embedder's collection answers, and the switch to a new one once it is complete.

Each build (an embedder and a recipe, see ``indexing.build``) has its own collection. Changing
``Settings.embedder`` or a chunking setting makes the next refresh build the new collection from
scratch, which takes minutes; meanwhile the
collection named by the *active pointer* keeps answering, queried with its own model. The pointer
moves to the new collection only at the end of a refresh that completed (every document tried,
the BM25 side built), under the refresh lock; a refresh killed half-way leaves it where it was,
and the next one resumes the build and switches then.

The pointer is the metadata of a small Chroma collection (``ACTIVE_COLLECTION``), not a local
file, so replicas sharing a Chroma server switch together with the writer.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chromadb.api import ClientAPI
from chromadb.errors import NotFoundError

from assistant.indexing.build import LEGACY_RECIPE, Build
from assistant.types import RefreshReport

log = logging.getLogger(__name__)

ACTIVE_COLLECTION = "alliance-active"


def read_active(client: ClientAPI) -> Build | None:
    """The build whose collection answers, or None when none was ever switched to (an index
    older than the pointer, or a new one). A pointer from before recipes names the first one."""
    try:
        meta = client.get_collection(ACTIVE_COLLECTION).metadata or {}
    except (NotFoundError, ValueError):
        return None
    spec, recipe = meta.get("embedder"), meta.get("recipe")
    if not isinstance(spec, str) or not spec:
        return None
    return Build(spec, recipe if isinstance(recipe, str) and recipe else LEGACY_RECIPE)


def write_active(client: ClientAPI, build: Build) -> None:
    """Point queries at ``build``'s collection (one metadata write: atomic for readers)."""
    meta: dict[str, Any] = {
        "embedder": build.embedder,
        "recipe": build.recipe,
        "switched_at": time.time(),
    }
    col = client.get_or_create_collection(ACTIVE_COLLECTION, embedding_function=None)
    col.modify(metadata=meta)


def chunk_count(client: ClientAPI, build: Build) -> int:
    """How many chunks ``build``'s collection holds (0 when it does not exist)."""
    try:
        return int(client.get_collection(build.collection).count())
    except (NotFoundError, ValueError):
        return 0


def _answering(client: ClientAPI, target: Build) -> Build | None:
    """The pointer's build; with no pointer (an index older than it), the legacy-named
    collection of ``target``'s embedder when it holds chunks."""
    pointed = read_active(client)
    if pointed is None:
        legacy = Build(target.embedder, LEGACY_RECIPE)
        if legacy != target and chunk_count(client, legacy) > 0:
            return legacy
    return pointed


def serving_build(client: ClientAPI, target: Build) -> Build:
    """The build to query: the pointer's, while ``target`` (the configured one) is being built
    and the pointed collection still holds chunks; else ``target``."""
    pointed = _answering(client, target)
    if pointed is None or pointed == target:
        return target
    if chunk_count(client, pointed) > 0:
        return pointed
    log.warning(
        "the active collection (%s) is empty: answering from %s", pointed.label, target.label
    )
    return target


def settle(client: ClientAPI, target: Build) -> tuple[Build, Build | None]:
    """After a complete refresh of ``target``'s collection, make it the one that answers,
    unless it holds nothing while the current one does (every document failed: switching
    would leave newcomers with no answers). Returns (active build, the one switched from or
    None)."""
    current = _answering(client, target)
    if current == target:
        return target, None
    if current is not None and chunk_count(client, target) == 0 and chunk_count(client, current):
        log.warning("the %s build holds no chunk: %s keeps answering", target.label, current.label)
        return current, None
    write_active(client, target)
    if current is not None:
        log.info("switched the answering collection from %s to %s", current.label, target.label)
    return target, current


def switch_notice(report: RefreshReport) -> list[str]:
    """What staff must know, in French, when a refresh switched the answering collection or the
    configured embedder is not (yet) the one answering. Empty otherwise."""
    if report.switched_from:
        return [
            f"Les réponses utilisent désormais l'index {report.embedder} "
            f"(à la place de {report.switched_from}, conservé pour un éventuel retour)."
        ]
    if report.active_embedder and report.active_embedder != report.embedder:
        if report.dry_run:
            return [
                f"L'index {report.embedder} serait construit ; l'index "
                f"{report.active_embedder} répond jusqu'à ce qu'il soit complet."
            ]
        return [
            f"L'index {report.embedder} ne contient aucun passage : l'index "
            f"{report.active_embedder} continue de répondre."
        ]
    return []
