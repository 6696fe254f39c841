"""``alliance eval``: run the gold question set through retrieval and answering and measure it.

Question lines: ``{"id", "question", "answerable": bool, "gold": [{"source", "page"?}],
"facts": [...], "history": [...]?, "type"?}``.

Besides retrieval (recall@k, MRR) and abstention it measures, per question, which facts the
answer holds (fact coverage, fully answered when all of them) and which facts the top
``EVIDENCE_K`` retrieved passages hold (evidence recall): the gap between the two is what
composing the answer loses. :func:`by_type` splits these by question type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError
from assistant.evaluation.metrics import (
    dedupe_keep_order,
    evidence_found,
    facts_found,
    median,
    percentile,
    recall_at_k,
    reciprocal_rank,
    unsupported_facts,
    word_count,
)
from assistant.retrieval.followup import contextualize
from assistant.types import Answer

if TYPE_CHECKING:
    from assistant.core import Assistant

KS = (1, 5, 10)
EVIDENCE_K = 5  # passages whose text evidence recall looks at
UNTYPED = "untyped"


@dataclass
class Question:
    id: str
    question: str
    answerable: bool
    gold: list[dict[str, Any]]
    facts: list[str]
    history: list[dict[str, str]] = field(default_factory=list)
    # Other documents that also hold the answer (tools/alt_gold.py); relevant, but not the
    # document the question was written from.
    also: list[dict[str, Any]] = field(default_factory=list)
    # What is asked ("list", "steps", "who", "followup", ...): results are also given per type.
    type: str = UNTYPED


def load_questions(path: Path) -> list[Question]:
    """Parse a JSONL question file; ConfigError naming the line on any malformed entry."""
    out: list[Question] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read questions file {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(
                Question(
                    id=str(d["id"]),
                    question=str(d["question"]),
                    answerable=bool(d["answerable"]),
                    gold=list(d.get("gold") or []),
                    facts=[str(f) for f in d.get("facts") or []],
                    history=list(d.get("history") or []),
                    also=list(d.get("also") or []),
                    type=str(d.get("type") or UNTYPED),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}:{n}: malformed question ({exc})") from exc
    return out


@dataclass
class EvalRow:
    id: str
    answerable: bool
    grounded: bool
    ranked_docs: list[str]
    ranked_pages: list[str]
    gold_docs: list[str]
    gold_pages: list[str]
    also_docs: list[str]
    also_pages: list[str]
    fact_coverage: float
    seconds: float
    answer: str
    kind: str = "extractive"
    drafted: int = 0  # sentences a model wrote
    dropped: int = 0  # of which the checks removed
    first_token_seconds: float | None = None  # a model's first draft token, from the start
    draft: str = ""  # the model's raw output
    # numbers, dates and names of a delivered model answer missing from their cited passage
    unsupported: list[str] = field(default_factory=list)
    type: str = UNTYPED
    facts_found: list[str] = field(default_factory=list)
    facts_missing: list[str] = field(default_factory=list)
    # Facts present in the text of the top EVIDENCE_K retrieved passages.
    evidence_found: list[str] = field(default_factory=list)
    evidence_recall: float = 0.0
    answer_words: int = 0


def run_eval(assistant: Assistant, questions: Sequence[Question], k: int = 10) -> list[EvalRow]:
    rows: list[EvalRow] = []
    for q in questions:
        started = time.perf_counter()
        query = contextualize(q.question, q.history)
        retrieval = assistant.retrieve(query, k=max(k, 10))
        answer: Answer | None = None
        first: float | None = None
        deltas: list[str] = []
        # as `Assistant.ask_stream` does: the answerer reads the standalone question
        for part in assistant.answerer.stream(query, retrieval, q.history):
            if isinstance(part, Answer):
                answer = part
            else:
                first = time.perf_counter() - started if first is None else first
                deltas.append(part)
        assert answer is not None  # every stream ends with its Answer
        seconds = time.perf_counter() - started
        hits = retrieval.hits
        in_answer = facts_found(answer.text, q.facts) if answer.grounded else [False] * len(q.facts)
        in_evidence = evidence_found([h.text for h in hits[:EVIDENCE_K]], q.facts)
        rows.append(
            EvalRow(
                id=q.id,
                answerable=q.answerable,
                grounded=answer.grounded,
                ranked_docs=dedupe_keep_order(h.source for h in hits),
                ranked_pages=dedupe_keep_order(f"{h.source}#{h.page}" for h in hits),
                gold_docs=[str(g["source"]) for g in q.gold],
                gold_pages=[f"{g['source']}#{g['page']}" for g in q.gold if g.get("page")],
                also_docs=[str(g["source"]) for g in q.also],
                also_pages=[f"{g['source']}#{g['page']}" for g in q.also if g.get("page")],
                fact_coverage=_share(in_answer) if answer.grounded else 0.0,
                seconds=seconds,
                answer=answer.text,
                kind=answer.kind,
                drafted=answer.drafted,
                dropped=answer.dropped,
                first_token_seconds=first,
                draft="".join(deltas),
                unsupported=_unsupported(answer),
                type=q.type,
                facts_found=[f for f, ok in zip(q.facts, in_answer, strict=True) if ok],
                facts_missing=[f for f, ok in zip(q.facts, in_answer, strict=True) if not ok],
                evidence_found=[f for f, ok in zip(q.facts, in_evidence, strict=True) if ok],
                evidence_recall=_share(in_evidence),
                answer_words=word_count(answer.text) if answer.grounded else 0,
            )
        )
    return rows


def _unsupported(answer: Answer) -> list[str]:
    """The facts of a delivered model answer its cited passages do not hold (none for extracts:
    they are quotes)."""
    if not answer.grounded or answer.kind == "extractive":
        return []
    return unsupported_facts(answer.text, [f"{h.title}\n{h.text}" for h in answer.citations])


def summarize(rows: Sequence[EvalRow]) -> dict[str, float]:
    ans = [r for r in rows if r.answerable]
    una = [r for r in rows if not r.answerable]
    paged = [r for r in ans if r.gold_pages]
    out: dict[str, float] = {
        "questions": len(rows),
        "answerable": len(ans),
        "unanswerable": len(una),
    }
    # Relevant = the question's gold document(s) plus the other documents that also hold the
    # answer; the strict figures count the gold document(s) only.
    for k in KS:
        out[f"recall@{k}"] = _mean(
            recall_at_k(r.ranked_docs, r.gold_docs + r.also_docs, k) for r in ans
        )
    out["mrr"] = _mean(reciprocal_rank(r.ranked_docs, r.gold_docs + r.also_docs) for r in ans)
    out["recall@5_strict"] = _mean(recall_at_k(r.ranked_docs, r.gold_docs, 5) for r in ans)
    out["mrr_strict"] = _mean(reciprocal_rank(r.ranked_docs, r.gold_docs) for r in ans)
    for k in KS:
        out[f"page_recall@{k}"] = _mean(
            recall_at_k(r.ranked_pages, r.gold_pages + r.also_pages, k) for r in paged
        )
    out["page_mrr"] = _mean(
        reciprocal_rank(r.ranked_pages, r.gold_pages + r.also_pages) for r in paged
    )
    out["answered_rate"] = _mean(1.0 if r.grounded else 0.0 for r in ans)
    out["fact_coverage"] = _mean(r.fact_coverage for r in ans)
    out["fully_answered_rate"] = _mean(_fully(r) for r in ans)
    out[f"evidence_recall@{EVIDENCE_K}"] = _mean(r.evidence_recall for r in ans)
    out["answer_words_p50"] = median([float(r.answer_words) for r in ans if r.grounded])
    out["abstention_accuracy"] = _mean(0.0 if r.grounded else 1.0 for r in una)
    secs = [r.seconds * 1000 for r in rows]
    out["latency_p50_ms"] = percentile(secs, 50)
    out["latency_p95_ms"] = percentile(secs, 95)
    drafted = [r for r in rows if r.drafted or r.first_token_seconds is not None]
    if drafted:  # a model wrote: how much of it the checks kept, and how fast it started
        out["model_answers"] = _mean(1.0 if r.kind != "extractive" else 0.0 for r in ans)
        out["dropped_sentence_rate"] = sum(r.dropped for r in rows) / max(
            1, sum(r.drafted for r in rows)
        )
        # in the answers delivered as the model's (the aim is 0): numbers, dates, names
        delivered = [r for r in rows if r.grounded and r.kind != "extractive"]
        out["unsupported_facts"] = sum(len(r.unsupported) for r in delivered)
        out["answers_with_unsupported_facts"] = sum(1 for r in delivered if r.unsupported)
        firsts = [r.first_token_seconds * 1000 for r in drafted if r.first_token_seconds]
        out["first_token_p50_ms"] = percentile(firsts, 50)
        out["first_token_p95_ms"] = percentile(firsts, 95)
        model_secs = [r.seconds * 1000 for r in drafted]
        out["model_total_p50_ms"] = percentile(model_secs, 50)
        out["model_total_p95_ms"] = percentile(model_secs, 95)
    return out


def by_type(rows: Sequence[EvalRow]) -> dict[str, dict[str, float]]:
    """Per question type: count, fact coverage, fully-answered rate, evidence recall, and for
    the unanswerable ones the abstention accuracy; types in alphabetical order."""
    out: dict[str, dict[str, float]] = {}
    for kind in sorted({r.type for r in rows}):
        group = [r for r in rows if r.type == kind]
        ans = [r for r in group if r.answerable]
        una = [r for r in group if not r.answerable]
        stats: dict[str, float] = {"questions": len(group)}
        if ans:
            stats["fact_coverage"] = _mean(r.fact_coverage for r in ans)
            stats["fully_answered_rate"] = _mean(_fully(r) for r in ans)
            stats[f"evidence_recall@{EVIDENCE_K}"] = _mean(r.evidence_recall for r in ans)
            stats["answered_rate"] = _mean(1.0 if r.grounded else 0.0 for r in ans)
        if una:
            stats["abstention_accuracy"] = _mean(0.0 if r.grounded else 1.0 for r in una)
        out[kind] = stats
    return out


def check_floors(summary: Mapping[str, float], floors: Mapping[str, float]) -> list[str]:
    """Names of metrics below their floor, as readable lines."""
    return [
        f"{name} = {summary.get(name, 0.0):.3f} < floor {floor:.3f}"
        for name, floor in floors.items()
        if summary.get(name, 0.0) < floor
    ]


def _fully(row: EvalRow) -> float:
    return 1.0 if row.grounded and not row.facts_missing else 0.0


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 1.0


def _mean(values: Any) -> float:
    vals = list(values)
    return sum(vals) / len(vals) if vals else 0.0
