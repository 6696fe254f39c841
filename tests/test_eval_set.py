"""The gold question set is in step with the corpus: its ``also`` lists (other documents that
hold the same answer, see tools/alt_gold.py) match what the documents say today."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.evaluation.metrics import normalize_plain
from assistant.ingest.loaders import load_document

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


def _questions() -> list[dict[str, object]]:
    lines = (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_every_question_has_a_known_type() -> None:
    import gold_pages

    for q in _questions():
        assert q.get("type") in gold_pages.QUESTION_TYPES, q["id"]
        assert (q["type"] == "unanswerable") == (not q["answerable"]), q["id"]


def test_newcomer_questions_are_there() -> None:
    kinds = [q["type"] for q in _questions() if str(q["id"]).startswith("nv-")]
    assert len([k for k in kinds if k != "unanswerable"]) >= 30
    for kind in ("how_to", "steps", "list", "who", "when", "followup", "english"):
        assert kind in kinds, kind


def test_every_fact_is_in_its_gold_document_as_loaded() -> None:
    """Attainable facts: each one occurs (folded, whitespace collapsed) in the text the
    project's loaders give for the question's gold document(s)."""
    corpus = ROOT / "corpus"
    texts: dict[str, str] = {}
    missing = []
    for q in _questions():
        if not q["answerable"]:
            continue
        gold = [str(g["source"]) for g in q["gold"]]  # type: ignore[attr-defined, index]
        for source in gold:
            if source not in texts:
                doc = load_document(corpus / source, corpus)
                texts[source] = normalize_plain(" ".join(p.page_content for p in doc.pages))
        for fact in q["facts"]:  # type: ignore[attr-defined]
            if not any(normalize_plain(fact) in texts[s] for s in gold):
                missing.append((q["id"], fact))
    assert missing == []
