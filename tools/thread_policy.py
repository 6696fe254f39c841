"""Compare OpenMP thread policies for the embedder, idle and next to CPU-bound processes.

    .venv/bin/python tools/thread_policy.py --index /tmp/idx --questions 20 --rounds 2

Each configuration runs in a fresh process (OpenMP reads its environment when the library
loads), back to back with the others, first on the machine as it is ("idle"), then next to
``--hogs`` processes spinning on the CPU. Per configuration: bare query-embedding, search and
ask p50/p95. numpy's BLAS runs on the product's thread count (``assistant.runtime``: one
unless ``ALLIANCE_BLAS_THREADS`` or an exported ``OPENBLAS_NUM_THREADS`` says otherwise) in
every configuration: no OpenMP variable governs it. Not a test: numbers depend on what else
runs on the machine (load average printed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CONFIGS: dict[str, dict[str, str]] = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin10k": {"GOMP_SPINCOUNT": "10000"},
    "spin100k": {"GOMP_SPINCOUNT": "100000"},
    "threads1": {"OMP_NUM_THREADS": "1"},
    "passive1": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"},
}


def child(cfg: dict[str, Any]) -> dict[str, Any]:
    from assistant import Assistant, Settings
    from assistant.evaluation.metrics import percentile
    from assistant.evaluation.run import load_questions

    qs = load_questions(ROOT / "eval" / "questions.jsonl")[: cfg["n"]]
    settings = Settings(corpus_dir=ROOT / "corpus", index_dir=Path(cfg["index"]))
    a = Assistant(settings)
    if cfg["ask"]:
        a.ask(qs[0].question)  # warm-up (sentence vectors: those the refresh embedded)
    else:
        a.search(qs[0].question, k=10)
    emb = a.embedder
    times: dict[str, list[float]] = {"embed": [], "search": [], "ask": []}
    for q in qs:
        t = time.perf_counter()
        emb.embed_query(q.question)
        times["embed"].append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        a.search(q.question, k=10)
        times["search"].append(1000 * (time.perf_counter() - t))
        if cfg["ask"]:
            t = time.perf_counter()
            a.ask(q.question)
            times["ask"].append(1000 * (time.perf_counter() - t))
    return {k: {"p50": percentile(v, 50), "p95": percentile(v, 95)} for k, v in times.items() if v}


def run_config(name: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, **CONFIGS[name], **blas_env(os.environ)}
    cfg = {"index": str(args.index), "n": args.questions, "ask": not args.no_ask}
    out = subprocess.run(
        [sys.executable, __file__, "_child", json.dumps(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=True,
        preexec_fn=(lambda: os.nice(args.nice)) if args.nice else None,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def blas_env(environ: Mapping[str, str]) -> dict[str, str]:
    """numpy's BLAS threads as the product sets them (``assistant.runtime``: one by default,
    ``ALLIANCE_BLAS_THREADS``), unless exported: no OpenMP configuration governs them, so every
    configuration compared gets the product's. Read when the child starts, before numpy."""
    from assistant.runtime import BLAS_VARIABLES, blas_thread_count
    from assistant.settings import Settings

    count = str(blas_thread_count(Settings.from_env(environ)))
    return {name: environ.get(name) or count for name in BLAS_VARIABLES}


def hogs(n: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


def main() -> int:
    if sys.argv[1:2] == ["_child"]:
        print(json.dumps(child(json.loads(sys.argv[2]))))
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--hogs", type=int, default=2)
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--no-ask", action="store_true")
    p.add_argument("--conds", default="idle,busy")
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the measured processes at this niceness (root: -20 approximates an idle "
        "machine on a shared one, the other processes getting ~1 %% of the cores)",
    )
    args = p.parse_args()
    names = args.configs.split(",")
    rows: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for cond in args.conds.split(","):
            for name in names:
                procs = hogs(args.hogs, 900) if cond == "busy" else []
                try:
                    time.sleep(0.5 if procs else 0)
                    load = os.getloadavg()[0]
                    r = run_config(name, args)
                finally:
                    for proc in procs:
                        proc.kill()
                        proc.wait()
                row = {"round": rnd, "cond": cond, "config": name, "load": load, **r}
                rows.append(row)
                cells = " ".join(
                    f"{k} {v['p50']:7.1f}/{v['p95']:7.1f}"
                    for k, v in r.items()
                    if isinstance(v, dict)
                )
                print(f"r{rnd} {cond:<4} {name:<9} load {load:4.1f}  {cells}", flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
