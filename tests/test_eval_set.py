"""The gold question set is in step with the corpus: its ``also`` lists (other documents that
hold the same answer, see tools/alt_gold.py) match what the documents say today."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import alt_gold  # noqa: E402


def test_also_lists_are_up_to_date() -> None:
    assert alt_gold.main([str(ROOT / "eval" / "questions.jsonl"), "--check"]) == 0


def test_also_never_repeats_gold_and_needs_all_facts() -> None:
    record = {
        "id": "x",
        "question": "Le fonds ODD 17 était doté de combien ?",
        "answerable": True,
        "gold": [{"source": "a.md"}],
        "facts": ["1,5 M€", "3 M€"],
    }
    chunks: list[tuple[str, int | None, str]] = [
        ("a.md", None, "Le fonds ODD 17 était doté de 1,5 M€ puis de 3 M€."),
        ("b.pdf", 4, "Le fonds ODD 17 : une dotation de 1,5 M€, puis 3 M€ selon le bilan."),
        ("c.md", None, "Le fonds ODD 17 était doté de 1,5 M€."),  # one fact only
        ("d.md", None, "Une dotation de 1,5 M€ et 3 M€ pour un autre programme."),  # off topic
    ]
    assert alt_gold.also_for(record, chunks) == [{"source": "b.pdf", "page": 4}]
    record["facts"] = ["projets"]
    assert alt_gold.also_for(record, chunks) == []
