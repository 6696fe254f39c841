"""The lexical mode of the searcher (the early index of a first build, no vector yet): BM25
ranks, and the passages it returns get their similarity to the query, so declining works as
over a complete index. Real Chroma in tmp_path; the real model for the similarity check."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HashEmbeddings, write_corpus
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.errors import QueryError

# Unlike the shared sample: an e-mail-like text, no heading, dates written out.
MEMO = """Objet : compte rendu du comité de pilotage

Bonjour à toutes et à tous,

le comité s'est réuni le douze mars à la maison des associations. La fondation d'entreprise
financera la moitié du poste de coordinatrice pendant deux ans ; la communauté
d'agglomération met à disposition un local de quarante mètres carrés.

Prochaine réunion : en juin, avec les bénévoles.
"""


def corpus(root: Path) -> Path:
    c = write_corpus(root)
    (c / "recits" / "comite.txt").write_text(MEMO, encoding="utf-8")
    return c


def test_lexical_mode_scores_passages_like_the_complete_index(
    tmp_path: Path, e5: Embeddings
) -> None:
    settings = Settings(corpus_dir=corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    question = "Qui finance le poste de coordinatrice ?"
    with Assistant(settings, embedder=e5) as assistant:
        assert assistant.warm_start() and assistant.search_mode() == "lexical"
        early = assistant.retrieve(question)
        top = early.results[0]
        assert top.chunk.metadata["source"] == "recits/comite.txt"
        assert top.dense_rank is None and top.bm25_rank == 1  # BM25 alone ranked it
        answer = assistant.ask(question)
        assert answer.grounded and "fondation" in answer.text.lower()
        declined = assistant.ask("Quelle est la recette de la tarte tatin aux pommes ?")
        assert not declined.grounded

        assistant.refresh()
        assert assistant.search_mode() == "hybrid"
        full = assistant.retrieve(question)
        same = next(r for r in full.results if r.chunk.id == top.chunk.id)
        # the similarity computed at query time is the one the stored vector gives
        assert same.dense == pytest.approx(top.dense, abs=2e-3)
        assert early.evidence_strength() == pytest.approx(full.evidence_strength(), abs=0.02)


def test_lexical_mode_filters_kinds_and_validates(tmp_path: Path) -> None:
    settings = Settings(corpus_dir=corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")
    with Assistant(settings, embedder=HashEmbeddings()) as assistant:
        assert assistant.warm_start()
        query = "associations, organisations et citoyens"
        assert {h.kind for h in assistant.search(query, k=10)} > {"charte"}
        hits = assistant.search(query, k=10, kinds=["charte"])
        assert hits and {h.kind for h in hits} == {"charte"}
        with pytest.raises(QueryError):
            assistant.search("   ")
        assert assistant.stats().chunks > 0 and assistant.stats().documents == 4
        assert assistant.store.count() == 0  # nothing embedded, nothing written
