"""The local model's plumbing without running a model: GGUF header, assembly and its checks,
missing parts named, our attribution of sentences (on passages written for the test), and the
fallback on a refused connection with its cooldown (a closed port, then a stub, on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import http_server
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.answering.attribution import Attributor, key_facts, missing_facts
from assistant.answering.citations import split_answer
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.llm import NOTICE_UNAVAILABLE, LLMAnswerer, make_answerer
from assistant.answering.local_model import (
    LOCAL_MODELS,
    LocalModelSpec,
    assemble,
    describe_exit,
    local_model_spec,
    model_cache_dir,
    part_paths,
    read_gguf_header,
    server_env,
)
from assistant.errors import ConfigError
from assistant.indexing.store import StoredChunk
from assistant.retrieval.hybrid import Retrieval, Scored
from assistant.types import Answer


def _gguf(meta: dict[str, str]) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta) + 1)
    for key, value in meta.items():
        k, v = key.encode(), value.encode()
        out += struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, len(v)) + v
    k = b"tokenizer.ggml.scores"  # an array, skipped
    out += struct.pack("<Q", len(k)) + k + struct.pack("<IIQ", 9, 6, 3) + b"\0" * 12
    return out + b"\0" * 64


def _fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, n: int) -> None:
    size = -(-len(data) // n)
    for i in range(1, n + 1):
        part = tmp_path / f"part{i:02d}.bin"
        part.write_bytes(data[(i - 1) * size : i * size])
        module = types.ModuleType(f"fake_model_part{i}")
        module.get_part_path = lambda p=part: str(p)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"fake_model_part{i}", module)


def _spec(data: bytes, **changes: Any) -> LocalModelSpec:
    spec = LocalModelSpec(
        key="fake",
        package="fake-model-part{n}",
        module="fake_model_part{n}",
        parts=3,
        version="1.0",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        architecture="llama",
        name="Tiny Test Model",
        extra="dev",
    )
    return dataclasses.replace(spec, **changes)


def test_gguf_header_is_read() -> None:
    meta = {"general.architecture": "llama", "general.name": "Tiny Test Model"}
    path = Path(__file__).parent / "_tmp.gguf"
    try:
        path.write_bytes(_gguf(meta))
        assert read_gguf_header(path) == meta
    finally:
        path.unlink(missing_ok=True)


def test_parts_assemble_once_and_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _gguf({"general.architecture": "llama", "general.name": "Tiny Test Model"})
    _fake_parts(tmp_path, monkeypatch, data, 3)
    spec = _spec(data)
    path = assemble(spec, tmp_path / "cache")
    assert path.read_bytes() == data
    assert assemble(spec, tmp_path / "cache") == path  # reused
    with pytest.raises(ConfigError, match="sha256"):
        assemble(_spec(data, sha256="0" * 64), tmp_path / "other")
    with pytest.raises(ConfigError, match=r"general\.name"):
        assemble(_spec(data, name="Another"), tmp_path / "third")
    assert not list((tmp_path / "other").glob("*.partial"))


def test_a_missing_part_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _gguf({"general.architecture": "llama", "general.name": "Tiny Test Model"})
    _fake_parts(tmp_path, monkeypatch, data, 3)
    monkeypatch.setitem(sys.modules, "fake_model_part2", None)  # not installed
    with pytest.raises(ConfigError, match=r"1 of 3 part.*fake-model-part2\b"):
        part_paths(_spec(data))


def test_pinned_models_and_settings() -> None:
    assert local_model_spec("local").key == "qwen2.5-coder-1.5b"
    assert local_model_spec("local:qwen2.5-coder-0.5b").parts == 6
    assert all(len(s.sha256) == 64 and s.size > 0 for s in LOCAL_MODELS.values())
    with pytest.raises(ConfigError):
        Settings(llm="remote")
    assert Settings.from_env({"ALLIANCE_LLM": "local"}).llm == "local"
    assert model_cache_dir(Settings(index_dir=Path("ix"))) == Path("ix/models")
    assert model_cache_dir(Settings(model_cache_dir=Path("/c"))) == Path("/c")
    assert server_env(2)["OMP_WAIT_POLICY"] == "PASSIVE"
    assert describe_exit(-11) == "exited with signal 11 (SIGSEGV)"
    local = Assistant(Settings(llm="local", index_dir=Path("nowhere")))
    assert local.answerer_info() == {"kind": "local-llm"}  # said without loading the model


def test_the_server_child_does_not_read_the_users_port_host_or_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """llama_cpp.server takes PORT/HOST from the environment over its arguments: with
    ``make run-local PORT=7861`` it bound the UI's own port and exited (status 3)."""
    for name, value in {"PORT": "7861", "HOST": "0.0.0.0", "api_key": "s3cret",
                        "CONFIG_FILE": "/etc/x.json", "KEEP_ME": "1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    env = server_env(1)
    assert not {"PORT", "HOST", "api_key", "CONFIG_FILE"} & set(env)
    assert env["KEEP_ME"] == "1" and env["PATH"] == os.environ["PATH"]


def test_extracts_stream_once(hash_embeddings: Embeddings) -> None:
    extractive = make_answerer(Settings(abstain_threshold=-1), hash_embeddings)
    retrieval = Retrieval("q", hash_embeddings.embed_query("q"), _scored(PASSAGES))
    parts = list(extractive.stream("Que fait la coopérative Brindille ?", retrieval))
    assert len(parts) == 1 and isinstance(parts[0], Answer) and parts[0].kind == "extractive"


# -- attribution, on passages unlike the shipped corpus ---------------------------------------
PASSAGES = [
    "La coopérative Brindille réunit 40 maraîchers de la Drôme depuis 2014. Elle livre les "
    "cantines de Valence chaque semaine.",
    "Pour rejoindre le réseau, une ferme signe la charte, paie une cotisation de 120 euros et "
    "suit une journée de formation.",
]


def _scored(texts: list[str]) -> list[Scored]:
    return [
        Scored(
            StoredChunk(f"c{i}", t, {"source": f"d{i}.md", "title": f"Doc {i}"}), 1.0, 0.9, 1, 1, 1
        )
        for i, t in enumerate(texts)
    ]


def _attributor(embedder: Embeddings) -> Attributor:
    def embed(texts: list[str]) -> np.ndarray:
        v = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    return Attributor(embed)


def test_sentences_get_the_passage_that_supports_them(e5: Embeddings) -> None:
    raw = (
        "Pour rejoindre le réseau, une ferme signe la charte et paie une cotisation de 120 euros.\n"
        "La coopérative Brindille réunit 40 maraîchers de la Drôme [2].\n"
        "Le ciel est bleu et les oiseaux chantent au printemps."
    )
    checked = _attributor(e5).attribute(split_answer(raw.replace("[2]", "")), _scored(PASSAGES))
    assert checked.kept == 2 and checked.sources == [2, 1]  # our [n], not the model's
    assert checked.text.splitlines()[0].endswith("[1]")
    assert [d.reason for d in checked.dropped] == ["unsupported"]


def test_a_number_or_name_not_in_the_passage_is_dropped(e5: Embeddings) -> None:
    raw = (
        "La coopérative Brindille réunit 45 maraîchers de la Drôme depuis 2014.\n"
        "La coopérative Brindille livre les cantines de Grenoble chaque semaine."
    )
    checked = _attributor(e5).attribute(split_answer(raw), _scored(PASSAGES))
    assert checked.kept == 0
    assert [d.reason for d in checked.dropped] == ["facts: 45", "facts: Grenoble"]
    assert key_facts("Le 3 mars 2021, Brindille a signé avec l'ADEME.") == [
        "3", "2021", "mars", "Brindille", "ADEME",
    ]  # fmt: skip
    assert missing_facts("Une cotisation de 120 euros.", PASSAGES[1]) == []
    assert missing_facts("Brindille a trois cantines.", PASSAGES[0]) == ["trois"]


def test_a_lead_in_whose_list_was_dropped_goes_and_kept_items_are_renumbered(
    e5: Embeddings,
) -> None:
    attributor = _attributor(e5)
    alone = "Voici comment rejoindre le réseau :\n1. Le ciel est bleu et les oiseaux chantent."
    checked = attributor.attribute(split_answer(alone), _scored(PASSAGES))
    assert checked.kept == 0 and checked.text == ""
    assert [d.reason for d in checked.dropped] == ["lead-in without what follows", "unsupported"]
    raw = (
        "Pour rejoindre le réseau :\n"
        "1. Une ferme signe la charte.\n"
        "2. Le ciel est bleu et les oiseaux chantent au printemps.\n"
        "3. Elle paie une cotisation de 120 euros."
    )
    checked = attributor.attribute(split_answer(raw), _scored(PASSAGES))
    lines = checked.text.splitlines()
    assert [ln.split(" ", 1)[0] for ln in lines[1:]] == ["1.", "2."]
    assert lines[2].startswith("2. Elle paie une cotisation de 120 euros.")
    # items counted « 1° », « 2° » as in French legal texts (``text.structure``): the same
    checked = attributor.attribute(split_answer(raw.replace(". ", "° ")), _scored(PASSAGES))
    assert [ln.split(" ", 1)[0] for ln in checked.text.splitlines()[1:]] == ["1°", "2°"]


# -- a refused connection falls back at once, then the model is left alone -------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class _Stub:
    requests: int = 0


@contextlib.contextmanager
def _serve_on(port: int, stub: _Stub) -> Iterator[None]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            stub.requests += 1
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m"}
            chunk["choices"] = [{"index": 0, "delta": {"content": "Bonjour."}}]  # type: ignore[assignment]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler, port):
        yield


def test_refused_connection_falls_back_and_cools_down(hash_embeddings: Embeddings) -> None:
    pytest.importorskip("langchain_openai", reason="the `llm` extra is not installed")
    port = _closed_port()
    settings = Settings(llm_url=f"http://127.0.0.1:{port}/v1", llm_model="m", abstain_threshold=-1)
    answerer = make_answerer(settings, hash_embeddings)
    assert isinstance(answerer, LLMAnswerer) and answerer.chat.max_retries == 0  # type: ignore[union-attr]
    fallback = answerer.fallback
    assert isinstance(fallback, ExtractiveAnswerer)
    passages = _scored(PASSAGES)
    retrieval = Retrieval("coopérative", hash_embeddings.embed_query("coopérative"), passages)
    first = list(answerer.stream("Que fait la coopérative Brindille ?", retrieval))
    assert len(first) == 1 and first[0].text.startswith(NOTICE_UNAVAILABLE)  # type: ignore[union-attr]
    assert "indisponible" in NOTICE_UNAVAILABLE and not answerer.available
    assert answerer.describe()["available"] is False
    stub = _Stub()
    with _serve_on(port, stub):  # the model is back, but the cooldown holds
        again = answerer.answer("Que fait la coopérative Brindille ?", retrieval)
        assert again.text.startswith(NOTICE_UNAVAILABLE) and stub.requests == 0
        answerer.unavailable_until = 0.0  # the cooldown is over
        answerer.answer("Que fait la coopérative Brindille ?", retrieval)
        assert stub.requests == 1


# A server whose shutdown waits for an answer it streams: it ignores SIGTERM (90 s at most).
STUBBORN = """\
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    time.sleep(0.1)
"""

PARENT = """\
import subprocess, sys, time
from assistant.answering.local_model import child_command
subprocess.Popen(child_command("stubborn_server", [sys.argv[1]], grace=1.0))
time.sleep(120)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's reaper may be slow to collect it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_server_child_ends_after_its_parent_is_killed_even_while_streaming(
    tmp_path: Path,
) -> None:
    """The parent is SIGKILLed (no atexit, no stop()): the child's watchdog sees it gone,
    asks it to stop, and ends it after the grace it gave itself, SIGTERM ignored or not."""
    (tmp_path / "stubborn_server.py").write_text(STUBBORN, encoding="utf-8")
    pid_file = tmp_path / "child.pid"
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join([str(tmp_path), root, os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pid_file)], env=env)
    child = 0
    try:
        deadline = time.monotonic() + 120  # the parent imports the assistant (busy machine)
        while not pid_file.exists():
            assert parent.poll() is None, "the parent died before starting its child"
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.1)
        child = int(pid_file.read_text())
        assert _running(child)
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.monotonic() + 45  # the grace is 1 s: far less, on a busy machine too
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), "the orphaned child is still running"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        if child and _running(child):
            os.kill(child, 9)
