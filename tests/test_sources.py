"""resolve_source: only catalogue documents inside the corpus are served; every traversal
form is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.indexing.served_files import resolve_source


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "charte").mkdir(parents=True)
    (root / "charte" / "pacte.md").write_text("# Pacte\n", encoding="utf-8")
    (root / "guide d'été.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "secret.txt").write_text("secret", encoding="utf-8")
    return root


INDEXED = {"charte/pacte.md", "guide d'été.pdf"}


def test_indexed_documents_resolve_to_their_real_path(corpus: Path) -> None:
    for source in INDEXED:
        assert resolve_source(corpus, INDEXED, source) == (corpus / source).resolve()


@pytest.mark.parametrize(
    "requested",
    [
        "../secret.txt",
        "charte/../../secret.txt",
        "charte/../charte/pacte.md",
        "./charte/pacte.md",
        "charte//pacte.md",
        "%2e%2e%2fsecret.txt",
        "%2E%2E/secret.txt",
        "..%2fsecret.txt",
        "%252e%252e%252fsecret.txt",
        "%25252e%25252e%25252fsecret.txt",
        "charte%2fpacte.md",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "C:/Windows/win.ini",
        "charte\\..\\..\\secret.txt",
        "charte/pacte.md\x00.pdf",
        "",
        "/",
    ],
)
def test_traversal_and_encoded_forms_are_refused(corpus: Path, requested: str) -> None:
    # even when the requested string itself is (wrongly) in the allow-list
    assert resolve_source(corpus, {*INDEXED, requested}, requested) is None


def test_files_outside_the_catalogue_are_refused(corpus: Path) -> None:
    (corpus / "charte" / "brouillon.md").write_text("brouillon", encoding="utf-8")
    assert resolve_source(corpus, INDEXED, "charte/brouillon.md") is None
    assert resolve_source(corpus, INDEXED, "charte/absent.md") is None


def test_symlinks_leaving_the_corpus_are_refused(corpus: Path, tmp_path: Path) -> None:
    link = corpus / "charte" / "lien.md"
    link.symlink_to(tmp_path / "secret.txt")
    folder_link = corpus / "dehors"
    folder_link.symlink_to(tmp_path)
    allowed = {*INDEXED, "charte/lien.md", "dehors/secret.txt"}
    assert resolve_source(corpus, allowed, "charte/lien.md") is None
    assert resolve_source(corpus, allowed, "dehors/secret.txt") is None


def test_symlinks_inside_the_corpus_and_loops(corpus: Path) -> None:
    (corpus / "alias.md").symlink_to(corpus / "charte" / "pacte.md")
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    allowed = {*INDEXED, "alias.md", "loop.md"}
    assert resolve_source(corpus, allowed, "alias.md") == (corpus / "charte/pacte.md").resolve()
    assert resolve_source(corpus, allowed, "loop.md") is None


def test_a_folder_is_not_a_document(corpus: Path) -> None:
    assert resolve_source(corpus, {"charte"}, "charte") is None


def test_relative_corpus_dir(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(corpus.parent)
    assert (
        resolve_source(Path("corpus"), INDEXED, "charte/pacte.md")
        == (corpus / "charte" / "pacte.md").resolve()
    )
    assert resolve_source(Path("corpus"), {"../secret.txt"}, "../secret.txt") is None
