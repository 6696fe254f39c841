"""Calibrate the attribution thresholds (assistant/answering/attribution.py) on the gold set.

For each answerable question with an ``evidence`` sentence: the passages retrieved for it; a
positive pair is the evidence against the passage that holds it, a negative pair is the same
evidence against the passages retrieved for another question (a sentence about something else).
Prints the overlap and similarity quantiles of both and how the pinned thresholds split them.

    python tools/calibrate_attribution.py --index /tmp/idx --limit 60
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from assistant import Assistant, Settings
from assistant.answering.attribution import MIN_OVERLAP, MIN_SIMILARITY, Attributor
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.text.french import fold


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"))
    ap.add_argument("--limit", type=int, default=60)
    args = ap.parse_args()
    a = Assistant(Settings(index_dir=args.index))
    answerer = a.answerer
    assert isinstance(answerer, ExtractiveAnswerer)
    attributor = Attributor(answerer.embed_texts)
    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["answerable"] and r.get("evidence")][: args.limit]
    retrieved = [a.retrieve(r["question"]).results[:3] for r in rows]
    pos: list[tuple[float, float]] = []
    neg: list[tuple[float, float]] = []
    for i, r in enumerate(rows):
        ev = r["evidence"]
        lex, sim = attributor.scores([ev], retrieved[i])
        for j, p in enumerate(retrieved[i]):
            if fold(ev[:60]) in fold(" ".join(p.chunk.text.split())):
                pos.append((float(lex[0, j]), float(sim[0, j])))
        other = retrieved[(i + 7) % len(rows)]
        lex, sim = attributor.scores([ev], other)
        for j, p in enumerate(other):
            if fold(ev[:60]) not in fold(" ".join(p.chunk.text.split())):
                neg.append((float(lex[0, j]), float(sim[0, j])))
    for name, pairs in (("positive", pos), ("negative", neg)):
        arr = np.array(pairs)
        q = np.percentile(arr, [5, 25, 50, 75, 95], axis=0)
        kept = np.mean((arr[:, 0] >= MIN_OVERLAP) & (arr[:, 1] >= MIN_SIMILARITY))
        print(f"{name}: n={len(arr)} overlap p5..p95 {np.round(q[:, 0], 2).tolist()}")
        print(f"{name}: similarity p5..p95 {np.round(q[:, 1], 3).tolist()}")
        print(f"{name}: supported at overlap>={MIN_OVERLAP} sim>={MIN_SIMILARITY}: {kept:.2f}")
    a.close()


if __name__ == "__main__":
    main()
