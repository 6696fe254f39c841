"""Time to first token of the bundled local model for several llama.cpp thread settings, side
by side under the same load: one ``llama_cpp.server`` per setting, started together, each
real prompt (what ``LLMAnswerer`` sends for a gold question: the chosen passages, the
history, the question) sent to every server in turn, the order rotated from one prompt to
the next so that no setting always goes first.

    .venv/bin/python tools/bench_local_threads.py --index /tmp/local-index --questions 12 \
        --configs 1:1 1:2 2:2 1:2:128 1:2@800

A setting is ``threads:batch_threads[:n_batch][@budget]``: generation threads, prompt
threads, prompt tokens per step, characters of passages in the prompt (default: the
answerer's). ``--max-tokens`` caps the answer (the first token is what is measured; a few
more show the generation rate). Not a test: the numbers depend on what else runs (the load
average is printed with each row). Writes one JSON line per request to ``--out``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.answering.drafting import answer_language, chosen_passages  # noqa: E402
from assistant.answering.llm import (  # noqa: E402
    LOCAL_HISTORY_TOKENS,
    LOCAL_PASSAGE_BUDGET,
    LOCAL_PASSAGES,
    LLMAnswerer,
    build_messages,
)
from assistant.answering.local_model import (  # noqa: E402
    LocalModelServer,
    assemble,
    local_model_spec,
    model_cache_dir,
)
from assistant.evaluation.metrics import percentile  # noqa: E402
from assistant.evaluation.run import load_questions  # noqa: E402
from assistant.retrieval.followup import contextualize  # noqa: E402

log = logging.getLogger("bench_local_threads")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def prompts(settings: Settings, n: int, budget: int) -> list[tuple[str, list[dict[str, str]]]]:
    """(question id, OpenAI messages) for the first ``n`` gold questions the model would get
    (grounded extractive answer), built as ``LLMAnswerer.stream`` builds them."""
    assistant = Assistant(settings)
    extractive = assistant.answerer
    if isinstance(extractive, LLMAnswerer):
        extractive = extractive.fallback
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    out: list[tuple[str, list[dict[str, str]]]] = []
    for q in load_questions(ROOT / "eval" / "questions.jsonl"):
        if len(out) >= n:
            break
        query = contextualize(q.question, q.history)
        retrieval = assistant.retrieve(query, k=10)
        answer = extractive.answer(query, retrieval)
        if not answer.grounded:
            continue
        passages = chosen_passages(answer, retrieval, most=LOCAL_PASSAGES, budget=budget)
        messages = build_messages(
            query,
            passages,
            q.history,
            LOCAL_HISTORY_TOKENS,
            cite=False,
            language=answer_language(query, passages),
        )
        out.append((q.id, [{"role": roles[m.type], "content": str(m.content)} for m in messages]))
    assistant.close()
    return out


def first_token(url: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    """Stream one chat completion; seconds to the first content delta and to the end."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    body = json.dumps(
        {"messages": messages, "temperature": 0.0, "max_tokens": max_tokens, "stream": True}
    )
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    first: float | None = None
    tokens = 0
    for raw in resp:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:") or line == "data: [DONE]":
            continue
        delta = json.loads(line[5:])["choices"][0].get("delta", {}).get("content")
        if delta:
            tokens += 1
            if first is None:
                first = time.perf_counter() - started
    conn.close()
    total = time.perf_counter() - started
    return {"first_s": first, "total_s": total, "deltas": tokens}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--configs", nargs="+", default=["1:1", "1:2", "2:2"])
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--llm", default="local")
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_local_threads.jsonl"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env(corpus_dir=ROOT / "corpus", index_dir=args.index)
    budgets = {int(c.partition("@")[2] or LOCAL_PASSAGE_BUDGET) for c in args.configs}
    todo = {b: prompts(settings, args.questions, b) for b in sorted(budgets)}
    log.info("%d prompts, load %.1f", len(next(iter(todo.values()))), loadavg())
    spec = local_model_spec(args.llm)
    path = assemble(spec, model_cache_dir(settings))
    servers: dict[str, LocalModelServer] = {}
    for cfg in args.configs:
        t, b, *rest = (int(x) for x in cfg.partition("@")[0].split(":"))
        server = LocalModelServer(
            path,
            alias=spec.key,
            threads=t,
            batch_threads=b,
            n_batch=rest[0] if rest else None,
            log_path=Path(f"/tmp/bench-{cfg.replace(':', '-')}.log"),
        )
        servers[cfg] = server
    results: dict[str, list[dict[str, Any]]] = {cfg: [] for cfg in servers}
    try:
        urls = {cfg: s.start() for cfg, s in servers.items()}
        budget_of = {c: int(c.partition("@")[2] or LOCAL_PASSAGE_BUDGET) for c in urls}
        for cfg, url in urls.items():  # the system prompt into each server's cache
            first_token(url, todo[budget_of[cfg]][0][1], 1)
        n = min(len(t) for t in todo.values())
        with args.out.open("w") as fh:
            for i in range(n):
                order = list(urls)[i % len(urls) :] + list(urls)[: i % len(urls)]
                for cfg in order:
                    qid, messages = todo[budget_of[cfg]][i]
                    before = loadavg()
                    row = first_token(urls[cfg], messages, args.max_tokens)
                    chars = sum(len(m["content"]) for m in messages)
                    row |= {"config": cfg, "id": qid, "load": before, "i": i, "chars": chars}
                    results[cfg].append(row)
                    fh.write(json.dumps(row) + "\n")
                    fh.flush()
                    log.info(
                        "%-10s %-8s first %6.1f s total %6.1f s load %.1f",
                        cfg, qid, row["first_s"] or -1, row["total_s"], before,
                    )  # fmt: skip
    finally:
        for s in servers.values():
            s.stop()
    print(f"{'config':<10} {'n':>3} {'first p50':>10} {'first p95':>10} {'total p50':>10} load")
    for cfg, rows in results.items():
        firsts = [r["first_s"] for r in rows if r["first_s"] is not None]
        totals = [r["total_s"] for r in rows]
        loads = [r["load"] for r in rows]
        if not rows:
            continue
        print(
            f"{cfg:<10} {len(rows):>3} {percentile(firsts, 50):>10.1f} "
            f"{percentile(firsts, 95):>10.1f} {percentile(totals, 50):>10.1f} "
            f"{min(loads):.1f}-{max(loads):.1f}"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    raise SystemExit(main())
