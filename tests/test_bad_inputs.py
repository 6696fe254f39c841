"""Bad input through a real refresh: every bad file gets a clear reason, the refresh goes on and
nothing indexed before is lost. Real Chroma in tmp_path, hashing embeddings for speed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import write_corpus
from fixtures_docs import (
    write_damaged_page_pdf,
    write_empty_file,
    write_encrypted_pdf,
    write_garbage_pdf,
    write_image_pdf,
    write_js_shell_html,
    write_latin1_html,
    write_mixed_pdf,
    write_report_pdf,
    write_shifted_pdf,
    write_sized_file,
    write_truncated_pdf,
)
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.indexing.refresh_log import read_log
from assistant.types import DocumentReport, RefreshReport

PASSWORD = "alliance2024"


def _assistant(tmp_path: Path, corpus: Path, embedder: Embeddings) -> Assistant:
    settings = Settings(
        corpus_dir=corpus,
        index_dir=tmp_path / "index",
        max_file_mb=0.05,  # 52 Ko: the fixtures are 7-15 Ko
        pdf_passwords=(PASSWORD,),
    )
    return Assistant(settings, embedder=embedder)


def _by_source(report: RefreshReport) -> dict[str, DocumentReport]:
    return {d.source: d for d in report.documents}


def _chunks_of(a: Assistant, source: str) -> dict[str, str]:
    return {c.id: c.text for c in a.store.all_chunks() if c.metadata["source"] == source}


def _write_bad_inputs(corpus: Path) -> None:
    write_truncated_pdf(corpus / "recits" / "tronque.pdf")
    (corpus / "recits" / "corrompu.pdf").write_bytes(
        b"%PDF-1.7\n" + bytes(range(256)) * 12 + b"\n%%EOF\n"
    )
    write_encrypted_pdf(corpus / "charte" / "chiffre-connu.pdf", password=PASSWORD)
    write_encrypted_pdf(corpus / "charte" / "chiffre-inconnu.pdf", password="autre-secret")
    write_image_pdf(corpus / "recits" / "scan.pdf")
    write_garbage_pdf(corpus / "recits" / "police-cassee.pdf")
    write_shifted_pdf(corpus / "recits" / "police-decalee.pdf")
    write_mixed_pdf(corpus / "recits" / "mixte.pdf")
    write_damaged_page_pdf(corpus / "recits" / "page-abimee.pdf")
    write_empty_file(corpus / "recits" / "vide.md")
    write_sized_file(corpus / "recits" / "enorme.txt", 100_000)
    write_sized_file(corpus / "recits" / "compte-rendu.docx", 500)
    write_js_shell_html(corpus / "recits" / "appli.html")
    write_latin1_html(corpus / "recits" / "latin1.html", declare=True)
    write_latin1_html(corpus / "recits" / "cp1252-sans-charset.html", declare=False)
    shutil.copy(corpus / "charte" / "pacte.md", corpus / "recits" / "pacte-copie.md")


def test_every_bad_input_is_reported_and_nothing_indexed_is_lost(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    write_report_pdf(corpus / "boite-a-outils" / "guide.pdf", title="Guide des alliances")
    a = _assistant(tmp_path, corpus, hash_embeddings)
    first = a.refresh()
    assert first.count("added") == 4 and not first.failed
    before = {s: _chunks_of(a, s) for s in _by_source(first)}

    _write_bad_inputs(corpus)
    second = a.refresh()
    docs = _by_source(second)

    def failed(source: str, reason_start: str) -> None:
        d = docs[source]
        assert d.status == "failed", (source, d)
        assert d.reason.startswith(reason_start), (source, d.reason)
        assert d.chunks_added == 0
        assert not _chunks_of(a, source)

    failed("recits/tronque.pdf", "PDF tronqué ou corrompu")
    failed("recits/corrompu.pdf", "PDF tronqué ou corrompu")
    failed("charte/chiffre-inconnu.pdf", "PDF chiffré : mot de passe incorrect")
    failed("recits/scan.pdf", "pas de couche texte (OCR nécessaire)")
    failed("recits/police-cassee.pdf", "texte illisible (police mal encodée)")
    failed("recits/police-decalee.pdf", "texte illisible (police mal encodée)")
    failed("recits/vide.md", "fichier vide")
    failed("recits/enorme.txt", "fichier trop volumineux (98 Ko > 51 Ko)")
    failed("recits/compte-rendu.docx", "type de fichier non pris en charge (.docx)")
    failed("recits/appli.html", "pas de texte principal")

    assert docs["charte/chiffre-connu.pdf"].status == "added"  # the password is in settings
    assert docs["charte/chiffre-connu.pdf"].chunks_added > 0
    for source in ("recits/mixte.pdf", "recits/page-abimee.pdf"):
        assert docs[source].status == "added" and docs[source].reason == "1 page sans texte"
        assert a.store.documents()[source].status == "warning"

    # Non-UTF-8 HTML, declared Latin-1 or undeclared windows-1252, reads correctly.
    for source in ("recits/latin1.html", "recits/cp1252-sans-charset.html"):
        assert docs[source].status == "added"
        text = " ".join(_chunks_of(a, source).values())
        assert "« Cœur de quartier »" in text and "Saint-Étienne" in text and "Ã" not in text
    hit = a.search("Cœur de quartier Saint-Étienne", k=1)[0]
    assert hit.source in {"recits/latin1.html", "recits/cp1252-sans-charset.html"}
    assert hit.title == "Récit : l'été où tout a commencé"

    # The same content under two names is indexed once, both names reported.
    copy, pacte = docs["recits/pacte-copie.md"], docs["charte/pacte.md"]
    assert copy.status == "warning" and copy.duplicate_of == "charte/pacte.md"
    assert "doublon de charte/pacte.md" in copy.reason
    assert pacte.aliases == ["recits/pacte-copie.md"] and pacte.status == "unchanged"
    assert not _chunks_of(a, "recits/pacte-copie.md")

    # Nothing indexed before is lost or re-embedded.
    for source, chunks in before.items():
        assert docs[source].status == "unchanged" and docs[source].chunks_added == 0
        assert _chunks_of(a, source) == chunks
    new = [s for s, d in docs.items() if d.status == "added"]
    assert sorted(new) == [
        "charte/chiffre-connu.pdf",
        "recits/cp1252-sans-charset.html",
        "recits/latin1.html",
        "recits/mixte.pdf",
        "recits/page-abimee.pdf",
    ]
    assert second.chunks_embedded == sum(docs[s].chunks_added for s in new)
    catalogue = a.store.documents()
    assert a.store.count() == sum(d.chunks for d in catalogue.values())
    assert "recits/compte-rendu.docx" not in catalogue  # reported, not catalogued

    # Nothing changed: nothing embedded, the same failures reported again.
    third = a.refresh()
    assert third.chunks_embedded == 0 and third.chunks_removed == 0
    assert {d.source for d in third.failed} == {d.source for d in second.failed}
    assert _by_source(third)["recits/pacte-copie.md"].status == "unchanged"
    assert [entry["dry_run"] for entry in read_log(tmp_path / "index")] == [False] * 3


def test_renames_unreadable_versions_and_lost_originals(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    guide = write_report_pdf(corpus / "boite-a-outils" / "guide.pdf", title="Guide des alliances")
    shutil.copy(corpus / "charte" / "pacte.md", corpus / "recits" / "pacte-copie.md")
    a = _assistant(tmp_path, corpus, hash_embeddings)
    a.refresh()
    evaluer = _chunks_of(a, "boite-a-outils/evaluer.md")
    guide_chunks = _chunks_of(a, "boite-a-outils/guide.pdf")
    count = a.store.count()

    # A renamed (moved) file is not re-embedded; its old name is not reported as removed.
    (corpus / "boite-a-outils" / "evaluer.md").rename(corpus / "charte" / "evaluation.md")
    # A document that becomes unreadable keeps its old chunks and is reported.
    guide.write_bytes(guide.read_bytes()[:3000])
    report = a.refresh()
    docs = _by_source(report)
    moved = docs["charte/evaluation.md"]
    assert moved.status == "unchanged" and moved.renamed_from == "boite-a-outils/evaluer.md"
    assert moved.chunks_added == 0 and moved.chunks_kept == len(evaluer)
    assert "boite-a-outils/evaluer.md" not in docs
    assert not _chunks_of(a, "boite-a-outils/evaluer.md")
    assert sorted(_chunks_of(a, "charte/evaluation.md").values()) == sorted(evaluer.values())
    assert {c.metadata["kind"] for c in a.store.all_chunks()
            if c.metadata["source"] == "charte/evaluation.md"} == {"charte"}  # fmt: skip
    unreadable = docs["boite-a-outils/guide.pdf"]
    assert unreadable.status == "failed" and unreadable.reason.startswith("PDF tronqué")
    assert unreadable.reason.endswith("(version précédente conservée)")
    assert unreadable.chunks_kept == len(guide_chunks) > 0
    assert _chunks_of(a, "boite-a-outils/guide.pdf") == guide_chunks
    assert report.chunks_embedded == 0 and a.store.count() == count
    hits = a.search("évaluation partenariale pertinence performance impact", k=3)
    assert hits[0].source == "charte/evaluation.md"
    assert any(h.source == "boite-a-outils/guide.pdf" for h in a.search("Guide des alliances", k=5))

    # The original of a duplicate goes: its other name takes over, without re-embedding.
    (corpus / "charte" / "pacte.md").unlink()
    docs = _by_source(a.refresh())
    copy = docs["recits/pacte-copie.md"]
    assert copy.renamed_from == "charte/pacte.md" and copy.chunks_added == 0
    assert "charte/pacte.md" not in docs
    assert a.search("quatre valeurs du Pacte civique", k=1)[0].source == "recits/pacte-copie.md"
    catalogue = a.store.documents()
    assert a.store.count() == sum(d.chunks for d in catalogue.values())
    assert set(catalogue) == {
        "boite-a-outils/guide.pdf",
        "charte/evaluation.md",
        "recits/histoire.md",
        "recits/pacte-copie.md",
    }


@pytest.mark.parametrize("title_in_file", [True, False])
def test_an_updated_document_reports_the_pages_that_changed(
    tmp_path: Path, hash_embeddings: Embeddings, title_in_file: bool
) -> None:
    from fixtures_docs import REPORT_PAGES, text_pdf_bytes

    corpus = write_corpus(tmp_path / "corpus")
    path = corpus / "boite-a-outils" / "guide.pdf"
    title = "Guide des alliances" if title_in_file else None
    path.write_bytes(text_pdf_bytes(REPORT_PAGES, title=title))
    a = _assistant(tmp_path, corpus, hash_embeddings)
    a.refresh()
    pages = list(REPORT_PAGES)
    pages[2] = "Mesurer l'impact\n\nUne nouvelle méthode d'évaluation partagée du territoire."
    path.write_bytes(text_pdf_bytes(pages, title=title))
    doc = _by_source(a.refresh())["boite-a-outils/guide.pdf"]
    assert doc.status == "updated" and doc.pages_changed == [3]
    assert doc.chunks_added == 1 and doc.chunks_removed == 1 and doc.chunks_kept == 3
    texts = " ".join(_chunks_of(a, "boite-a-outils/guide.pdf").values())
    assert "nouvelle méthode" in texts and "pertinence, la performance" not in texts
