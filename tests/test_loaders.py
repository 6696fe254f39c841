"""Loaders on real generated files: good documents load cleanly, bad ones fail with a reason."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

import pytest
from fixtures_docs import (
    REPORT_HEADER,
    text_pdf_bytes,
    write_boilerplate_html,
    write_damaged_page_pdf,
    write_empty_file,
    write_encrypted_pdf,
    write_front_matter_md,
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

from assistant.errors import DocumentError
from assistant.ingest.loaders import (
    SUPPORTED_SUFFIXES,
    LoadedDocument,
    discover,
    kind_for,
    load_document,
)


def _reason(path: Path, corpus: Path, **kwargs: object) -> str:
    with pytest.raises(DocumentError) as info:
        load_document(path, corpus, **kwargs)  # type: ignore[arg-type]
    assert info.value.source == path.relative_to(corpus).as_posix()
    return info.value.reason


def _check_metadata(doc: LoadedDocument, *, pdf: bool) -> None:
    for page in doc.pages:
        meta = page.metadata
        assert None not in meta.values()
        assert meta["source"] == doc.source
        assert meta["title"] == doc.title
        assert meta["kind"] == doc.kind
        assert meta["sha256"] == doc.sha256
        assert ("page" in meta) is pdf


# --- discovery -------------------------------------------------------------------------------


def test_discover_skips_sources_hidden_readme_and_outside_links(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for rel in (
        "recits/b.pdf",
        "recits/a.md",
        "charte/Charte.HTML",
        "top.txt",
        "_src/recits/b.md",
        ".git/notes.md",
        "recits/.cache/x.txt",
        "recits/_draft.md",
        "README.md",
        "recits/readme.txt",
        "recits/notes.docx",
    ):
        write_sized_file(corpus / rel, 10)
    outside = write_sized_file(tmp_path / "secret" / "leak.md", 10)
    os.symlink(outside, corpus / "recits" / "leak.md")
    os.symlink(outside.parent, corpus / "linked-dir")
    os.symlink(corpus / "recits", corpus / "outils")  # inside, already walked: skipped
    os.symlink(corpus / "_src" / "recits", corpus / "sources")  # inside, not walked: followed
    os.symlink(corpus, corpus / "recits" / "loop")  # a loop: not followed
    os.symlink(corpus / "top.txt", corpus / "charte" / "top-link.md")  # inside file: kept

    found = [p.relative_to(corpus).as_posix() for p in discover(corpus)]
    assert found == [
        "charte/Charte.HTML",
        "charte/top-link.md",
        "recits/a.md",
        "recits/b.pdf",
        "sources/b.md",
        "top.txt",
    ]


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        ("recits/a.pdf", "recit"),
        ("charte/a.md", "charte"),
        ("chartes/sous/a.md", "charte"),
        ("boite-a-outils/a.html", "boite-a-outils"),
        ("boites-a-outils/a.html", "boite-a-outils"),
        ("outils/a.html", "boite-a-outils"),
        ("Recits/a.pdf", "recit"),
        ("divers/a.pdf", "autre"),
        ("recits.pdf", "autre"),
    ],
)
def test_kind_for(relative: str, kind: str) -> None:
    assert kind_for(PurePosixPath(relative)) == kind


def test_supported_suffixes() -> None:
    assert {".pdf", ".html", ".htm", ".md", ".markdown", ".txt"} == SUPPORTED_SUFFIXES


# --- PDF -------------------------------------------------------------------------------------


def test_report_pdf_loads_clean_pages(tmp_path: Path) -> None:
    path = write_report_pdf(tmp_path / "recits" / "guide-2024.pdf")
    doc = load_document(path, tmp_path)
    assert doc.source == "recits/guide-2024.pdf"
    assert doc.kind == "recit"
    assert doc.page_count == 4
    assert doc.warnings == []
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc.title == "Faire alliance en France"  # no /Title: first line of page 1
    assert [p.metadata["page"] for p in doc.pages] == [1, 2, 3, 4]
    _check_metadata(doc, pdf=True)
    text = "\n".join(p.page_content for p in doc.pages)
    assert REPORT_HEADER not in text
    assert "Page" not in text and "/ 4" not in text
    assert "Un partenariat réussi" in text
    assert "la co-construction de projets" in text
    assert "financements" in text  # ﬁ ligature split
    first = doc.pages[0].page_content
    assert first.startswith("Faire alliance en France\n\nLes alliances")  # paragraph kept
    assert "\n- le mécénat de compétences\n- la co-construction" in doc.pages[1].page_content


@pytest.mark.parametrize(
    "first_page",
    [
        "Les alliances entre associations et entreprises se multiplient dans les territoires,\n"
        "portées par des dirigeants convaincus.",
        "Un partenariat se construit.\nIl dure.",
        "Le Pacte civique est un engagement\nque chacun prend envers les autres.",
    ],
)
def test_pdf_without_title_whose_first_line_is_a_sentence_is_named_after_its_file(
    tmp_path: Path, first_page: str
) -> None:
    path = tmp_path / "recits" / "recit_terrain-2024.pdf"
    path.parent.mkdir(parents=True)
    path.write_bytes(text_pdf_bytes([first_page + "\n\nSuite du texte sur la page.", "Page 2."]))
    assert load_document(path, tmp_path).title == "Recit terrain 2024"


def test_pdf_title_comes_from_metadata_when_meaningful(tmp_path: Path) -> None:
    good = write_report_pdf(tmp_path / "a.pdf", title="Guide des alliances")
    placeholder = write_report_pdf(tmp_path / "b.pdf", title="Microsoft Word - guide.docx")
    assert load_document(good, tmp_path).title == "Guide des alliances"
    assert load_document(placeholder, tmp_path).title == "Faire alliance en France"
    assert load_document(good, tmp_path, title="Imposé", kind="charte").pages[0].metadata == {
        "source": "a.pdf",
        "title": "Imposé",
        "kind": "charte",
        "sha256": hashlib.sha256(good.read_bytes()).hexdigest(),
        "page": 1,
    }


def test_truncated_pdf(tmp_path: Path) -> None:
    path = write_truncated_pdf(tmp_path / "cut.pdf")
    assert _reason(path, tmp_path).startswith("PDF tronqué ou corrompu")


def test_corrupted_pdf(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(3000) + b"\n%%EOF\n")
    assert _reason(path, tmp_path).startswith("PDF tronqué ou corrompu")


def test_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "page.pdf"
    path.write_text("<html>not a pdf</html>", encoding="utf-8")
    assert _reason(path, tmp_path).startswith("fichier PDF invalide")


def test_encrypted_pdf_needs_the_right_password(tmp_path: Path) -> None:
    path = write_encrypted_pdf(tmp_path / "secret.pdf", password="alliance2024")
    assert _reason(path, tmp_path) == "PDF chiffré : mot de passe requis"
    assert _reason(path, tmp_path, passwords=["faux"]) == "PDF chiffré : mot de passe incorrect"
    doc = load_document(path, tmp_path, passwords=["faux", "alliance2024"])
    assert doc.page_count == 4
    assert "Un partenariat réussi" in doc.pages[0].page_content


def test_image_only_pdf_needs_ocr(tmp_path: Path) -> None:
    path = write_image_pdf(tmp_path / "scan.pdf")
    assert _reason(path, tmp_path) == "pas de couche texte (OCR nécessaire)"


def test_garbage_text_pdf_is_flagged(tmp_path: Path) -> None:
    path = write_garbage_pdf(tmp_path / "broken-font.pdf")
    assert _reason(path, tmp_path).startswith("texte illisible (police mal encodée)")


def test_pdf_with_one_damaged_page_keeps_the_others(tmp_path: Path) -> None:
    doc = load_document(write_damaged_page_pdf(tmp_path / "damaged.pdf"), tmp_path)
    assert [p.metadata["page"] for p in doc.pages] == [1, 3, 4]
    assert doc.warnings == ["1 page sans texte"]


def test_shifted_glyph_map_pdf_is_flagged(tmp_path: Path) -> None:
    path = write_shifted_pdf(tmp_path / "shifted.pdf")
    assert _reason(path, tmp_path).startswith("texte illisible (police mal encodée)")


def test_pdf_page_without_text_is_skipped_with_a_warning(tmp_path: Path) -> None:
    doc = load_document(write_mixed_pdf(tmp_path / "mixed.pdf"), tmp_path)
    assert doc.page_count == 3
    assert [p.metadata["page"] for p in doc.pages] == [1, 3]
    assert doc.warnings == ["1 page sans texte"]


# --- any file --------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    assert _reason(write_empty_file(tmp_path / "vide.pdf"), tmp_path) == "fichier vide"
    assert _reason(write_empty_file(tmp_path / "vide.md"), tmp_path) == "fichier vide"


def test_file_over_max_bytes(tmp_path: Path) -> None:
    path = write_sized_file(tmp_path / "gros.txt", 3 * 2**19)
    assert _reason(path, tmp_path, max_bytes=2**20) == "fichier trop volumineux (1,5 Mo > 1 Mo)"
    small = write_sized_file(tmp_path / "petit.txt", 2000)
    assert _reason(small, tmp_path, max_bytes=1000) == "fichier trop volumineux (2 Ko > 1000 o)"
    assert load_document(small, tmp_path, max_bytes=2000).pages  # the limit itself is allowed


def test_unsupported_type(tmp_path: Path) -> None:
    path = write_sized_file(tmp_path / "compte-rendu.docx", 100)
    assert _reason(path, tmp_path) == "type de fichier non pris en charge (.docx)"


def test_missing_file(tmp_path: Path) -> None:
    assert _reason(tmp_path / "absent.md", tmp_path).startswith("fichier illisible")


# --- HTML ------------------------------------------------------------------------------------


def test_javascript_shell_has_no_main_text(tmp_path: Path) -> None:
    path = write_js_shell_html(tmp_path / "app.html")
    assert _reason(path, tmp_path).startswith("pas de texte principal")


@pytest.mark.parametrize("declare", [True, False])
def test_latin1_html_reads_accents(tmp_path: Path, declare: bool) -> None:
    path = write_latin1_html(tmp_path / "recits" / "recit.htm", declare=declare)
    doc = load_document(path, tmp_path)
    text = doc.pages[0].page_content
    assert "À Saint-Étienne, l'association « Cœur de quartier »" in text
    assert "Les élèves ont découvert des métiers" in text
    assert doc.title == "Récit : l'été où tout a commencé"
    assert doc.page_count is None
    _check_metadata(doc, pdf=False)


@pytest.mark.parametrize("semantic", [True, False])
def test_html_keeps_the_article_and_drops_nav_cookies_footer(
    tmp_path: Path, semantic: bool
) -> None:
    path = write_boilerplate_html(tmp_path / "outils" / "guide.html", semantic=semantic)
    doc = load_document(path, tmp_path)
    text = doc.pages[0].page_content
    for boilerplate in ("Accueil", "publications", "cookies", "Accepter", "Mentions", "Suivez"):
        assert boilerplate not in text
    assert doc.title == "Faire alliance entre associations et entreprises"
    assert doc.kind == "boite-a-outils"
    assert "\n\nLes trois étapes clés\n\n" in text  # heading on its own line
    assert "- Identifier un besoin partagé sur le territoire\n- Co-construire" in text
    assert "| Association | Connaissance du terrain |" in text
    assert "#" not in text and "---" not in text
    assert text.endswith("qui se construit dans la durée.")


# --- Markdown / text -------------------------------------------------------------------------


def test_markdown_front_matter_and_marks_are_stripped(tmp_path: Path) -> None:
    doc = load_document(write_front_matter_md(tmp_path / "charte" / "charte.md"), tmp_path)
    assert doc.title == "Charte du faire alliance"
    assert doc.kind == "charte"
    assert doc.pages[0].page_content == (
        "Charte du faire alliance\n\n"
        "Préambule : cette charte engage les signataires à coopérer.\n\n"
        "Nos engagements\n\n"
        "- Co-construire avec les partenaires\n- Évaluer ensemble l'impact\n\n"
        "Texte final de la charte."
    )
    _check_metadata(doc, pdf=False)


def test_markdown_title_falls_back_to_front_matter_then_stem(tmp_path: Path) -> None:
    fm = tmp_path / "a.md"
    fm.write_text("---\ntitle: 'Le Pacte civique'\n---\nTexte du pacte.\n", encoding="utf-8")
    bare = tmp_path / "guide_des-alliances_2024.markdown"
    bare.write_text("## Sous-titre\n\nTexte.\n", encoding="utf-8")
    assert load_document(fm, tmp_path).title == "Le Pacte civique"
    assert load_document(bare, tmp_path).title == "Guide des alliances 2024"


def test_markdown_with_only_front_matter_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "vide.md"
    path.write_text("---\ntitle: Rien\n---\n\n\n", encoding="utf-8")
    assert _reason(path, tmp_path) == "texte vide"


def test_text_file_falls_back_to_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "notes_reunion.txt"
    path.write_bytes("Réunion : l’œuvre commune.\n\n# pas un titre".encode("cp1252"))
    doc = load_document(path, tmp_path)
    assert doc.pages[0].page_content == "Réunion : l’œuvre commune.\n\n# pas un titre"
    assert doc.title == "Notes reunion"


def test_shipped_pdf_footnote_calls_are_not_glued_to_words() -> None:
    corpus = Path(__file__).parent.parent / "corpus"
    doc = load_document(corpus / "boite-a-outils" / "financer-ingenierie-alliance.pdf", corpus)
    first = doc.pages[0].page_content
    assert "alliance1." not in first and "ingénierie d'alliance.\n" in first
    assert "\n1 Ces trois conditions" in first  # the note itself stays, as text
