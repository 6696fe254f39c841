"""A running Assistant (``alliance serve``) picks up what another process indexed (``alliance
refresh`` next to it) on the embedded Chroma store: new documents reach both the BM25 and the
vector side, and searches running meanwhile never fail. The writer is a real subprocess."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant import core as core_module

QUESTION = "Que fait la coopérative des pêcheurs de Saint-Malo avec le lycée maritime ?"
NEW = "recits/peche.md"
WRITER = """
import sys
sys.path.insert(0, {tests!r})
from conftest import HashEmbeddings
from assistant import Assistant, Settings
settings = Settings(corpus_dir={corpus!r}, index_dir={index!r})
Assistant(settings, embedder=HashEmbeddings()).refresh()
"""


def test_a_running_assistant_sees_what_another_process_indexed(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_module, "_STEP_CHECK_S", 0.0)
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    server = Assistant(settings, embedder=hash_embeddings)
    server.refresh()
    assert server.search(QUESTION, k=1)[0].source != NEW

    (small_corpus / NEW).write_text(
        "# Les pêcheurs de Saint-Malo\n\nLa coopérative des pêcheurs de Saint-Malo accueille "
        "les élèves du lycée maritime pour une semaine de mer avec les marins.\n",
        encoding="utf-8",
    )
    errors: list[BaseException] = []
    searches = 0
    stop = threading.Event()

    def search_loop() -> None:
        nonlocal searches
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                assert server.search("Pacte civique", k=2)
                searches += 1
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)
                return

    threads = [threading.Thread(target=search_loop) for _ in range(3)]
    for t in threads:
        t.start()
    script = WRITER.format(
        tests=str(Path(__file__).parent), corpus=str(small_corpus), index=str(settings.index_dir)
    )
    try:
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
        time.sleep(0.2)  # a few searches after the writer is done: they reload
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:3]
    assert searches > 0

    top = server.retrieve(QUESTION, k=1).results[0]
    assert top.chunk.metadata["source"] == NEW
    assert top.dense_rank == 1  # the vector side sees the other process's new vectors too
