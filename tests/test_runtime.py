"""The thread policy for the native engines (assistant.runtime) and the catalogue cache that
keeps a search from reading SQLite on every query."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HashEmbeddings

from assistant import Assistant
from assistant.errors import ConfigError
from assistant.indexing.catalogue import Catalogue, CatalogVersion, DocumentRecord
from assistant.indexing.paths import IndexPaths
from assistant.indexing.store import IndexStore
from assistant.runtime import (
    apply_thread_policy,
    blas_thread_count,
    local_model_threads,
    thread_count,
    thread_env,
)
from assistant.settings import Settings


def test_auto_policy_is_passive_waiting_on_every_core() -> None:
    env = thread_env(Settings(), cpus=4)
    assert env == {"OMP_NUM_THREADS": "4", "OMP_WAIT_POLICY": "PASSIVE"}


def test_explicit_threads_and_policies() -> None:
    assert thread_env(Settings(threads=1, omp_wait_policy="passive"), cpus=8) == {
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    assert thread_env(Settings(omp_wait_policy="Active"), cpus=2)["OMP_WAIT_POLICY"] == "ACTIVE"
    assert thread_count(Settings(), cpus=0) == 1


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        thread_env(Settings(omp_wait_policy="spin"))
    with pytest.raises(ConfigError):
        thread_env(Settings(threads=-1))


def test_settings_read_from_the_environment() -> None:
    s = Settings.from_env({"ALLIANCE_THREADS": "3", "ALLIANCE_OMP_WAIT_POLICY": "passive"})
    assert thread_env(s) == {"OMP_NUM_THREADS": "3", "OMP_WAIT_POLICY": "PASSIVE"}


_BLAS_1 = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_apply_keeps_what_the_user_exported() -> None:
    env = {"OMP_WAIT_POLICY": "active", "OMP_NUM_THREADS": "7"}
    in_force = apply_thread_policy(Settings(threads=2), env)
    # the user's OpenMP choice is untouched; the BLAS default is added beside it
    assert env == {"OMP_WAIT_POLICY": "active", "OMP_NUM_THREADS": "7", **_BLAS_1}
    assert in_force == env
    spin = {"GOMP_SPINCOUNT": "1000"}  # a spin count chosen by the user: no wait policy added
    assert apply_thread_policy(Settings(threads=2), spin) == {
        "GOMP_SPINCOUNT": "1000",
        "OMP_NUM_THREADS": "2",
        **_BLAS_1,
    }
    fresh: dict[str, str] = {}
    apply_thread_policy(Settings(threads=2), fresh)
    assert fresh == {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE", **_BLAS_1}
    exported = {"OPENBLAS_NUM_THREADS": "4"}
    apply_thread_policy(Settings(), exported)
    assert exported["OPENBLAS_NUM_THREADS"] == "4"
    assert exported["MKL_NUM_THREADS"] == "1"


def test_blas_threads_one_by_default_every_core_at_zero() -> None:
    assert blas_thread_count(Settings(), cpus=8) == 1
    assert blas_thread_count(Settings(blas_threads=0), cpus=8) == 8
    assert blas_thread_count(Settings(blas_threads=3), cpus=8) == 3
    wide: dict[str, str] = {}
    apply_thread_policy(Settings.from_env({"ALLIANCE_BLAS_THREADS": "2"}), wide)
    assert wide["OPENBLAS_NUM_THREADS"] == wide["MKL_NUM_THREADS"] == "2"
    with pytest.raises(ConfigError):
        blas_thread_count(Settings(blas_threads=-1))


def test_importing_the_library_sets_nothing() -> None:
    code = (
        "import os, assistant, assistant.core, assistant.runtime\n"
        "print(sorted(k for k in os.environ if k.startswith(_MANAGED)))"
    ).replace("_MANAGED", repr(_PREFIXES))
    env = _without_policy()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


_PREFIXES = ("OMP_", "GOMP_", "OPENBLAS_", "MKL_")


def _without_policy() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}


def test_cli_applies_the_policy_before_any_engine(tmp_path: Path) -> None:
    """`alliance` sets the policy in its own environment at start (the children inherit it),
    and caps the BLAS numpy loaded before the entry point ran (it read its variables then)."""
    code = (
        "import os, sys\n"
        "import numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "from ui import cli\n"
        "cli.main(['--index', sys.argv[1], 'search', 'x'])\n"
        "blas = sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'})\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('OMP_NUM_THREADS'),\n"
        "      os.environ.get('OPENBLAS_NUM_THREADS'), blas)"
    )
    env = _without_policy()
    env["ALLIANCE_THREADS"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "idx")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "PASSIVE 1 1 [1]"


def _record(source: str, sha: str) -> DocumentRecord:
    return DocumentRecord(source, sha, "T", "autre", None, 1, "indexed", "", 0.0)


def test_catalogue_cache_sees_every_write(tmp_path: Path, hash_embeddings) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(index_dir=tmp_path / "idx", embedder="hash")
    store = IndexStore(settings, hash_embeddings)
    other = IndexStore(settings, hash_embeddings)  # another writer on the same files
    assert store.documents() == {}
    store.save_document(_record("a.md", "1" * 64))
    assert store.documents()["a.md"].sha256 == "1" * 64
    probe = CatalogVersion(tmp_path / "idx" / "catalog.sqlite")
    v1 = probe.read()
    # same size, same source, another sha256, written by the other instance right away
    other.save_document(_record("a.md", "2" * 64))
    assert probe.read() != v1
    assert store.documents()["a.md"].sha256 == "2" * 64
    other.forget_document("a.md")
    assert store.documents() == {}
    # a fresh dict each time: a caller changing it changes no later answer
    store.save_document(_record("b.md", "3" * 64))
    got = store.documents()
    got.clear()
    assert list(store.documents()) == ["b.md"]


def test_catalog_version_of_a_missing_file(tmp_path: Path) -> None:
    assert CatalogVersion(tmp_path / "none.sqlite").read() is None


def _descriptors_on(path: Path) -> list[str]:
    """This process's file descriptors open on ``path`` (Linux: /proc/self/fd)."""
    fds = Path("/proc/self/fd")
    target = path.resolve()
    found = []
    for fd in fds.iterdir():
        try:
            if Path(os.readlink(fd)) == target:
                found.append(fd.name)
        except OSError:  # closed meanwhile (the descriptor iterdir itself used)
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
def test_closing_the_assistant_closes_the_catalogue(tmp_path: Path, small_corpus: Path) -> None:
    """The catalogue's version probe keeps ``catalog.sqlite`` open between queries; the
    Assistant's close() closes it with the Chroma client, and the next query opens it again."""
    settings = Settings(corpus_dir=small_corpus, index_dir=tmp_path / "index")
    catalogue = IndexPaths(settings.index_dir).catalogue
    assistant = Assistant(settings, embedder=HashEmbeddings())
    assistant.refresh()
    assert assistant.search("Pacte civique")
    assert _descriptors_on(catalogue)  # the probe, kept open for the next query
    assistant.close()
    assert _descriptors_on(catalogue) == []
    assert assistant.search("Pacte civique")  # re-opened on use
    assistant.close()
    assert _descriptors_on(catalogue) == []


def test_the_local_model_reads_the_prompt_on_every_core_and_writes_on_one_fewer() -> None:
    assert local_model_threads(Settings(), cpus=2) == (1, 2)
    assert local_model_threads(Settings(), cpus=16) == (4, 16)
    assert local_model_threads(Settings(threads=1), cpus=2) == (1, 1)


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0)
try:
    db.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as e:
    print("locked" if "locked" in str(e) else repr(e))
else:
    print("got the write lock")
"""


def test_reading_the_catalogue_version_keeps_a_writers_locks(tmp_path: Path) -> None:
    """A search reads the catalogue's version while a refresh thread of the same process may
    be writing it: the read must not drop that writer's POSIX locks (closing any descriptor
    of the file would), or another process could write mid-transaction."""
    path = tmp_path / "catalog.sqlite"
    store = Catalogue(path, "c")
    writer = sqlite3.connect(path, timeout=0)
    writer.execute("BEGIN IMMEDIATE")  # a refresh mid-transaction
    writer.execute("INSERT INTO documents (collection, source) VALUES ('c', 'a.md')")
    try:
        for _ in range(3):
            store.documents()  # probes the version (and reads the committed rows)
        other = subprocess.run(
            [sys.executable, "-c", LOCKER, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert other.stdout.strip() == "locked"
    finally:
        writer.rollback()
        writer.close()
    assert store.documents() == {}
