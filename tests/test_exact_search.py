"""The dense side's exact scan (``retrieval.exact``) and the per-query caches of search: the
same rankings as the store's own query, and never an answer from a catalogue that moved (a
refresh by another writer is seen, a mix of two versions never shown)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import HashEmbeddings, indexed_assistant
from langchain_core.embeddings import Embeddings

from assistant import Assistant
from assistant.indexing.build import embedding_text
from assistant.indexing.catalogue import Catalogue, DocumentRecord
from assistant.indexing.lexical import LexicalIndex
from assistant.retrieval.exact import ExactIndex
from assistant.retrieval.hybrid import HybridSearcher
from assistant.retrieval.rerank import StructureReranker

# Written unlike the sample corpus: minutes, a notice, a FAQ, a list of steps.
DOCS = {
    "recits/compte-rendu.md": """# Compte rendu de la réunion du conseil de quartier

Présents : douze habitants, deux élus, la directrice du centre social.

Le conseil a voté la création d'un jardin partagé derrière la médiathèque. Les habitants
arroseront à tour de rôle ; la mairie fournira l'eau et un abri pour les outils.

Prochaine séance en octobre : bilan des récoltes et choix des semences d'hiver.
""",
    "boite-a-outils/notice.md": """# Notice : monter un atelier de réparation de vélos

1. Trouver un local abrité, même petit, près d'une école ou d'une gare.
2. Réunir des outils de base : clés plates, démonte-pneus, pompe, rustines.
3. Former deux bénévoles qui accueilleront le public chaque samedi matin.
4. Annoncer l'atelier dans le bulletin municipal et sur les panneaux des commerces.
""",
    "boite-a-outils/faq.md": """# Questions fréquentes sur le mécénat de compétences

Qui peut en bénéficier ? Toute association d'intérêt général reconnue.

Combien de temps dure une mission ? De quelques heures à plusieurs mois selon le projet.

Le salarié reste payé par son employeur, qui peut déduire une partie du coût de ses impôts.
""",
    "charte/engagements.md": """# Charte des bénévoles de la banque alimentaire

Chaque bénévole s'engage à respecter la dignité des personnes accueillies, à garder
confidentielles les informations reçues et à signaler tout produit périmé.

La charte est relue chaque année en assemblée générale.
""",
    "autre/horaires.md": """# Horaires et accès

La ressourcerie ouvre du mardi au samedi, de dix heures à dix-huit heures. Les dépôts
d'objets se font par l'entrée de la rue des Tanneurs, les ventes par la grande porte.
""",
}

QUERIES = [
    "jardin partagé médiathèque",
    "atelier réparation vélos outils",
    "mécénat de compétences salarié impôts",
    "charte bénévoles dignité",
    "horaires ressourcerie dépôts",
    "réunion conseil de quartier semences",
]


def _assistant(tmp_path: Path, embedder: Embeddings, **kw: Any) -> Assistant:
    """The corpus in ``tmp_path/corpus`` indexed in ``tmp_path/index``, short chunks."""
    return indexed_assistant(tmp_path, embedder=embedder, chunk_size=200, **kw)


def _searcher(a: Assistant, exact_max: int) -> HybridSearcher:
    store = a.store
    return HybridSearcher(
        store,
        a.embedder,
        LexicalIndex.open(store),
        StructureReranker(),  # as the assistant's
        candidates=30,
        dense_weight=1.0,
        bm25_weight=0.6,
        rrf_k=10,
        exact_max=exact_max,
    )


def test_exact_index_orders_ties_as_stored_and_filters_kinds() -> None:
    matrix = np.asarray([[1, 0], [0, 1], [1, 0], [0.6, 0.8]], dtype=np.float32)
    index = ExactIndex(["a", "b", "c", "d"], matrix, ["recit", "charte", "recit", "charte"], None)
    assert [i for i, _ in index.query([2.0, 0.0], 2)] == ["a", "c"]  # a tie: stored order
    assert [i for i, _ in index.query([1.0, 0.0], 10)] == ["a", "c", "d", "b"]
    assert [i for i, _ in index.query([1.0, 0.0], 2, ["charte"])] == ["d", "b"]
    assert index.query([1.0, 0.0], 3, ["autre"]) == []
    assert index.query([1.0, 0.0], 1)[0][1] == pytest.approx(1.0)


@pytest.mark.integration
def test_the_exact_scan_ranks_as_the_store_does(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    a = _assistant(tmp_path, hash_embeddings, docs=DOCS)
    exact, chroma = _searcher(a, 1000), _searcher(a, 0)
    for kinds in (None, ["boite-a-outils"], ["charte", "recit"]):
        for q in QUERIES:
            got, want = exact.retrieve(q, 5, kinds), chroma.retrieve(q, 5, kinds)
            assert [(r.chunk.id, r.dense_rank, r.bm25_rank) for r in got.results] == [
                (r.chunk.id, r.dense_rank, r.bm25_rank) for r in want.results
            ], (q, kinds)
            for g, w in zip(got.results, want.results, strict=True):
                assert g.dense == pytest.approx(w.dense, abs=1e-5)
            assert all(kinds is None or r.chunk.metadata["kind"] in kinds for r in got.results)
    # the assistant's own searcher answers the same
    hits = a.search(QUERIES[1], k=5)
    assert [h.chunk_id for h in hits] == [
        r.chunk.id for r in chroma.retrieve(QUERIES[1], 5).results
    ]
    a.close()


@pytest.mark.integration
def test_a_refresh_by_another_writer_is_seen_and_never_mixed(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    serving = _assistant(tmp_path, hash_embeddings, docs=DOCS)
    before = serving.search("jardin partagé médiathèque", k=3)  # the copy is taken here
    assert before[0].source == "recits/compte-rendu.md"
    old_ids = {c.id for c in serving.store.all_chunks()}

    # another writer (its own store, catalogue and caches) rewrites a document
    (tmp_path / "corpus" / "recits" / "compte-rendu.md").write_text(
        "# Compte rendu\n\nLe conseil a renoncé au jardin : un poulailler collectif sera "
        "installé près du gymnase, avec des poules rousses confiées aux écoles.\n",
        encoding="utf-8",
    )
    writer = _assistant(tmp_path, hash_embeddings)
    now = {c.id: c for c in writer.store.all_chunks()}

    hits = serving.search("poulailler collectif poules rousses gymnase", k=3)
    assert hits[0].source == "recits/compte-rendu.md"
    assert "poulailler" in hits[0].text
    for q in [*QUERIES, "poulailler gymnase écoles"]:
        for h in serving.search(q, k=5):
            assert h.chunk_id in now, h  # only chunks of the versions the catalogue shows
    # deep enough that a chunk of the old version would come up if any side let it through
    for q in ("jardin partagé médiathèque arroseront", "semences d'hiver récoltes"):
        assert all(h.chunk_id in now for h in serving.search(q, k=20)), q
    old_version = old_ids - set(now)
    assert old_version and not any(
        h.chunk_id in old_version for q in QUERIES for h in serving.search(q, k=5)
    )
    writer.close()
    serving.close()


def test_the_catalogue_filter_follows_writes_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    catalogue = Catalogue(path, "c")
    assert catalogue.chunk_filter() is None
    catalogue.save(DocumentRecord("a.md", "1" * 64, "A", "autre", None, 2, "indexed", "", 0.0))
    first = catalogue.chunk_filter()
    assert first is not None and first is catalogue.chunk_filter()  # kept while unchanged
    assert first({"source": "a.md", "sha256": "1" * 64})
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from assistant.indexing.catalogue import Catalogue, DocumentRecord
        c = Catalogue(Path({str(path)!r}), "c")
        c.save(DocumentRecord("a.md", {"2" * 64!r}, "A", "autre", None, 2, "indexed", "", 0.0))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    moved = catalogue.chunk_filter()
    assert moved is not None and moved != first
    assert moved({"source": "a.md", "sha256": "2" * 64})
    assert not moved({"source": "a.md", "sha256": "1" * 64})
    # a write of other rows (another build's) gives a new but equal filter
    Catalogue(path, "other").save(
        DocumentRecord("b.md", "3" * 64, "B", "autre", None, 1, "indexed", "", 0.0)
    )
    again = catalogue.chunk_filter()
    assert again is not moved and again == moved


@pytest.mark.integration
def test_the_vectors_copy_is_kept_for_the_next_start_and_only_for_its_collection(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    a = _assistant(tmp_path, hash_embeddings, docs=DOCS)
    first = {q: [h.chunk_id for h in a.search(q, k=5)] for q in QUERIES}
    a.close()
    kept = list((tmp_path / "index").glob("vectors-*.npz"))
    assert len(kept) == 1
    b = _assistant(tmp_path, hash_embeddings, refresh=False)  # a restart: reads the copy
    assert {q: [h.chunk_id for h in b.search(q, k=5)] for q in QUERIES} == first
    b.close()

    # the index rebuilt from scratch with a model that embeds otherwise (same name, same
    # dimensions, same chunk ids): a new collection, whose vectors the old copy must not give
    shutil.rmtree(tmp_path / "index" / "chroma")
    (tmp_path / "index" / "catalog.sqlite").unlink()
    reversed_model = _Reversed()
    c = _assistant(tmp_path, reversed_model)
    for q in QUERIES:
        top = c.retrieve(q, k=3).results[0]
        passage = embedding_text(str(top.chunk.metadata.get("title", "")), top.chunk.text)
        want = np.dot(reversed_model.embed_query(q), reversed_model.embed_documents([passage])[0])
        assert top.dense == pytest.approx(float(want), abs=1e-5), q
    c.close()


class _Reversed(HashEmbeddings):
    """Another model: the hash vectors reversed."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [v[::-1] for v in super().embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        return super().embed_query(text)[::-1]
