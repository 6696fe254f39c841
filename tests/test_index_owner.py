"""An embedded index is open in one process at a time (``indexing.owner_lock``): Chroma's local
store is not safe across processes (a reader next to a writer corrupted the index here). A
second process, through the CLI or the library, is refused with a message saying who holds the
index, and neither the holder's searches nor its index suffer; once the holder closes, the
other process opens it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.errors import IndexBusyError, IndexLockedError
from assistant.indexing import owner_lock as ownership

QUESTION = "Que dit le Pacte civique ?"
OTHER = """
import sys
sys.path.insert(0, {tests!r})
from conftest import HashEmbeddings
from assistant import Assistant, Settings
from assistant.errors import IndexBusyError
a = Assistant(Settings(corpus_dir={corpus!r}, index_dir={index!r}), embedder=HashEmbeddings())
try:
    print(len(a.search("Pacte civique", k=2)))
except IndexBusyError as exc:
    print("busy:", exc)
"""


def _other_process(settings: Settings) -> str:
    script = OTHER.format(
        tests=str(Path(__file__).parent),
        corpus=str(settings.corpus_dir),
        index=str(settings.index_dir),
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_a_second_process_is_refused_then_opens_once_the_holder_closes(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    holder = Assistant(settings, embedder=hash_embeddings)
    holder.refresh()
    before = [h.chunk_id for h in holder.search(QUESTION, k=3)]

    refused = _other_process(settings)
    assert refused.startswith("busy: l'index")
    assert f"pid {os.getpid()}" in refused  # says who holds it
    # the CLI says it too, and exits non-zero, before loading any model
    cli = subprocess.run(
        [sys.executable, "-m", "ui.cli", "--corpus", str(small_corpus),
         "--index", str(settings.index_dir), "refresh"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert cli.returncode == 4  # IndexBusyError: busy
    assert "ouvert par un autre processus" in cli.stderr
    assert [h.chunk_id for h in holder.search(QUESTION, k=3)] == before

    holder.close()
    assert _other_process(settings) == "2"
    # the closed Assistant re-opens (and claims again) on next use
    assert [h.chunk_id for h in holder.search(QUESTION, k=3)] == before
    assert _other_process(settings).startswith("busy:")


def test_assistants_of_one_process_share_the_claim(
    tmp_path: Path, small_corpus: Path, hash_embeddings: Embeddings
) -> None:
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    with Assistant(settings, embedder=hash_embeddings) as first:
        first.refresh()
        with Assistant(settings, embedder=hash_embeddings) as second:
            assert second.search(QUESTION, k=1)
        assert first.search(QUESTION, k=1)  # the other one's close() kept the claim
        assert _other_process(settings).startswith("busy:")
    assert _other_process(settings) == "2"  # the last close gave it back


def test_a_forked_child_does_not_inherit_the_claim(tmp_path: Path) -> None:
    index = tmp_path / "index"
    ownership.claim(index)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: the parent's claim is not its own
            code = 1
            try:
                ownership.claim(index)
            except IndexBusyError as exc:
                code = 0 if isinstance(exc, IndexLockedError) else 1
            os.write(write, bytes([code]))
            os._exit(0)
        os.close(write)
        answer = os.read(read, 1)
        os.waitpid(pid, 0)
        os.close(read)
        assert answer == b"\x00"
    finally:
        ownership.release(index)
    ownership.claim(index)  # released: this process (or another) may claim it again
    ownership.release(index)


def test_the_refusal_survives_a_damaged_owner_file(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    (index / ownership.INFO_NAME).write_text('{"pid": 1, "since": "hier"}', encoding="utf-8")
    assert "pid 1 : « ? », depuis ?" in ownership.busy_message(index)
    (index / ownership.INFO_NAME).write_text("pas du JSON", encoding="utf-8")
    assert ownership.busy_message(index).startswith(f"l'index {index} est ouvert par un autre")
