"""Merge the evaluation question parts and pin each PDF gold source to its page.

``python tools/gold_pages.py eval/parts/*.jsonl -o eval/questions.jsonl`` merges the parts (in
sorted file order), validates every record, and for each gold entry whose source is a PDF finds
the page whose extracted text (pypdf) contains the question's ``evidence``; it writes
``"page": N`` (1-based). For HTML/Markdown/text sources it checks that the evidence occurs in the
document's text. ``--check`` validates an existing ``eval/questions.jsonl`` without writing.

Problems (evidence not found, missing source, duplicate id, bad field) are printed and make the
exit status non-zero; warnings are printed but do not fail.

Record schema (one JSON object per line)::

    id: str (unique)          question: str            answerable: bool
    gold: [{source: str (relative to corpus/), page?: int >= 1}]   (empty iff unanswerable)
    facts: [str]              (non-empty iff answerable; each must occur in a gold document)
    evidence?: str | [str]    verbatim passage(s) from a gold document
    history?: [{role: "user" | "assistant", content: str}]
    lang?: "fr" | "en"        (default "fr")
    type: str                 what is asked, one of QUESTION_TYPES ("list", "steps", "who", ...);
                              ``alliance eval`` reports fact coverage per type
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KNOWN_KEYS = {
    "id", "question", "answerable", "gold", "facts", "evidence", "history", "lang",
    "also",  # other documents that also answer, filled by tools/alt_gold.py
    "type",
}  # fmt: skip
# What a question asks, so the eval can report per kind (a list question needs the whole list).
QUESTION_TYPES = {
    "list", "steps", "who", "when", "how_many", "how_much", "definition", "how_to", "what",
    "why", "yes_no", "followup", "english", "unanswerable",
}  # fmt: skip
TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
HTML_SUFFIXES = {".html", ".htm"}
APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "“": '"', "”": '"'})
SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"


# ------------------------------------------------------------------ normalisation


def normalise(text: str, *, keep_hyphen_breaks: bool = False) -> str:
    """Lowercase, fold whitespace, join end-of-line hyphenation, unify apostrophes, drop
    footnote markers, so a passage copied from a source matches the PDF's extracted text."""
    text = unicodedata.normalize("NFC", text).translate(APOSTROPHES)
    text = re.sub(r"\[\^[^\]]+\]", "", text)  # Markdown footnote references
    text = re.sub(f"[{SUPERSCRIPTS}]+", "", text)  # rendered footnote markers
    text = text.replace("**", "").replace("\u00ad", "")
    text = re.sub(r"(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])", "", text)  # *italic* markers
    join = "-" if keep_hyphen_breaks else ""
    text = re.sub(r"(\w)-[ \t]*\n[ \t]*(?=\w)", lambda m: m.group(1) + join, text)
    return re.sub(r"\s+", " ", text).strip().lower()


def variants(text: str) -> tuple[str, str]:
    """Both readings of a line-end hyphen: a hyphenation to join, or a real compound hyphen."""
    return normalise(text), normalise(text, keep_hyphen_breaks=True)


# --------------------------------------------------------------- document texts


@lru_cache(maxsize=256)
def pdf_pages(path: Path) -> tuple[str, ...]:
    """Extracted text of each page of a PDF (pypdf)."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return tuple(page.extract_text() or "" for page in reader.pages)


def html_visible_text(markup: str) -> str:
    """Visible text of an HTML page: scripts, styles and tags removed, entities decoded."""
    markup = re.sub(r"(?is)<(script|style|noscript|template)\b.*?</\1\s*>", " ", markup)
    markup = re.sub(r"(?s)<!--.*?-->", " ", markup)
    markup = re.sub(r"<[^>]+>", " ", markup)
    return html.unescape(markup)


def html_main_text(markup: str) -> str | None:
    """Main content as trafilatura extracts it (what an indexer would keep), if available."""
    try:
        import trafilatura
    except ImportError:
        return None
    extracted = trafilatura.extract(markup, include_tables=True, favor_recall=True)
    return extracted or ""


@lru_cache(maxsize=256)
def document_text(path: Path) -> str:
    """The whole text of any corpus document."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return "\n".join(pdf_pages(path))
    raw = path.read_text(encoding="utf-8", errors="replace")
    if suffix in HTML_SUFFIXES:
        return html_visible_text(raw)
    return raw


def contains(haystack: str, needle: str) -> bool:
    """Whether the normalised needle occurs in either reading of the normalised haystack."""
    target = normalise(needle)
    return bool(target) and any(target in v for v in variants(haystack))


def find_page(path: Path, evidence: str) -> int | None:
    """1-based number of the first page of ``path`` containing ``evidence``."""
    for number, text in enumerate(pdf_pages(path), start=1):
        if contains(text, evidence):
            return number
    return None


def spans_pages(path: Path, evidence: str) -> int | None:
    """First page N such that the evidence only occurs across pages N and N+1."""
    pages = pdf_pages(path)
    for number in range(1, len(pages)):
        if contains(pages[number - 1] + "\n" + pages[number], evidence):
            return number
    return None


# ------------------------------------------------------------------- validation


@dataclass
class Report:
    """Problems fail the run; warnings are only shown."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def warn(self, where: str, message: str) -> None:
        self.warnings.append(f"{where}: {message}")


def evidences(record: dict[str, Any]) -> list[str]:
    value = record.get("evidence")
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def check_schema(record: Any, where: str, report: Report) -> bool:
    """Field types and the answerable/gold/facts coherence; False if unusable."""
    if not isinstance(record, dict):
        report.problem(where, "not a JSON object")
        return False
    ok = True
    for key in ("id", "question"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            report.problem(where, f"{key!r} must be a non-empty string")
            ok = False
    if not isinstance(record.get("answerable"), bool):
        report.problem(where, "'answerable' must be true or false")
        ok = False
    gold, facts = record.get("gold"), record.get("facts")
    if not isinstance(gold, list) or not all(
        isinstance(g, dict) and isinstance(g.get("source"), str) and g["source"] for g in gold
    ):
        report.problem(where, "'gold' must be a list of {source: str, page?: int}")
        ok = False
    else:
        for g in gold:
            extra = set(g) - {"source", "page"}
            if extra:
                report.problem(where, f"gold entry has unknown keys {sorted(extra)}")
            page = g.get("page")
            if page is not None and (
                not isinstance(page, int) or isinstance(page, bool) or page < 1
            ):
                report.problem(where, f"gold page must be an integer >= 1, got {page!r}")
                ok = False
    if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
        report.problem(where, "'facts' must be a list of non-empty strings")
        ok = False
    if ok and record["answerable"] and (not gold or not facts):
        report.problem(where, "answerable questions need at least one gold source and one fact")
    if ok and not record["answerable"] and (gold or facts):
        report.problem(where, "unanswerable questions must have empty 'gold' and 'facts'")
    history = record.get("history")
    if history is not None and (
        not isinstance(history, list)
        or not history
        or not all(
            isinstance(t, dict)
            and t.get("role") in ("user", "assistant")
            and isinstance(t.get("content"), str)
            and t["content"].strip()
            and set(t) == {"role", "content"}
            for t in history
        )
    ):
        report.problem(
            where, "'history' must be a non-empty list of {role: user|assistant, content}"
        )
    evidence = record.get("evidence")
    if evidence is not None and not evidences(record):
        report.problem(where, "'evidence' must be a non-empty string or list of strings")
    if record.get("lang", "fr") not in ("fr", "en"):
        report.problem(where, "'lang' must be 'fr' or 'en'")
    if record.get("type") not in QUESTION_TYPES:
        report.problem(where, f"'type' must be one of {sorted(QUESTION_TYPES)}")
    elif (record["type"] == "unanswerable") == bool(record.get("answerable")):
        report.problem(where, "'type' is 'unanswerable' iff 'answerable' is false")
    unknown = set(record) - KNOWN_KEYS
    if unknown:
        report.warn(where, f"unknown keys {sorted(unknown)}")
    return ok


def resolve_gold(
    record: dict[str, Any], where: str, corpus: Path, report: Report, fill: bool = True
) -> None:
    """Check sources exist, fill/verify PDF pages from the evidence, check facts occur."""
    passages = evidences(record)
    matched: set[int] = set()
    texts: list[str] = []
    for g in record["gold"]:
        source = g["source"]
        path = corpus / source
        if source.startswith(("/", "_")) or ".." in Path(source).parts:
            report.problem(where, f"gold source {source!r} must be relative to corpus/")
            continue
        if not path.is_file():
            report.problem(where, f"gold source {source!r} does not exist under {corpus}")
            continue
        try:
            texts.append(document_text(path))
        except Exception as exc:  # a tools script: report the unreadable file and carry on
            report.problem(where, f"cannot read {source!r}: {type(exc).__name__}: {exc}")
            continue
        if path.suffix.lower() == ".pdf":
            _pin_page(g, path, passages, matched, where, report, fill)
        else:
            found = [i for i, p in enumerate(passages) if contains(texts[-1], p)]
            matched.update(found)
            if path.suffix.lower() in HTML_SUFFIXES and found:
                main = html_main_text(path.read_text(encoding="utf-8", errors="replace"))
                if main is not None and not any(contains(main, passages[i]) for i in found):
                    report.warn(where, f"evidence is in {source} but outside its main content")
    for i, passage in enumerate(passages):
        if i not in matched and texts:
            report.problem(where, f"evidence not found in any gold source: {passage[:70]!r}")
    if texts:
        for fact in record["facts"]:
            if not any(contains(t, fact) for t in texts):
                report.problem(where, f"fact {fact!r} does not occur in its gold document(s)")


def _pin_page(
    g: dict[str, Any],
    path: Path,
    passages: list[str],
    matched: set[int],
    where: str,
    report: Report,
    fill: bool,
) -> None:
    found = {i: n for i, p in enumerate(passages) if (n := find_page(path, p)) is not None}
    matched.update(found)
    source = g["source"]
    for i, passage in enumerate(passages):
        across = None if i in found else spans_pages(path, passage)
        if across:
            matched.add(i)
            report.problem(
                where,
                f"evidence spans pages {across}-{across + 1} of {source}: "
                f"pick a passage inside one page: {passage[:60]!r}",
            )
    if not found:
        if not passages and "page" not in g:
            report.problem(where, f"PDF gold {source!r} needs 'evidence' (or a 'page')")
        elif not passages and g["page"] > len(pdf_pages(path)):
            report.problem(where, f"{source} has no page {g['page']}")
        return
    page = min(found.values())
    if "page" in g and g["page"] not in found.values():
        report.problem(where, f"{source} page {g['page']} but the evidence is on page {page}")
    if fill:
        g.setdefault("page", page)
    elif "page" not in g:
        report.problem(where, f"PDF gold {source!r} has no page (run gold_pages.py)")


def validate(
    records: Iterable[tuple[str, Any]], corpus: Path, fill: bool = True
) -> tuple[list[dict[str, Any]], Report]:
    """Validate ``(where, record)`` pairs; returns them with PDF gold pages filled in when
    ``fill`` (otherwise a PDF gold entry without a page is a problem)."""
    report = Report()
    seen: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for where, record in records:
        if not check_schema(record, where, report):
            continue
        qid = record["id"]
        if qid in seen:
            report.problem(where, f"duplicate id {qid!r} (first at {seen[qid]})")
        seen.setdefault(qid, where)
        resolve_gold(record, f"{where} [{qid}]", corpus, report, fill)
        out.append(record)
    return out, report


def read_jsonl(paths: Iterable[Path], report: Report) -> list[tuple[str, Any]]:
    """Records of the given JSONL files, each with its ``file:line`` location."""
    records: list[tuple[str, Any]] = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                records.append((where, json.loads(line)))
            except json.JSONDecodeError as exc:
                report.problem(where, f"invalid JSON: {exc}")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", type=Path, help="eval/parts/*.jsonl")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--check", action="store_true", help="validate --output, write nothing")
    parser.add_argument("--force", action="store_true", help="write the output despite problems")
    args = parser.parse_args(argv)
    reading = Report()
    if args.check:
        if not args.output.is_file():
            print(f"{args.output} does not exist", file=sys.stderr)
            return 1
        sources = [args.output]
    else:
        if not args.parts:
            parser.error("give the part files to merge (or --check)")
        sources = sorted(args.parts, key=lambda p: p.name)
    records, report = validate(read_jsonl(sources, reading), args.corpus, fill=not args.check)
    problems = reading.problems + report.problems
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    answerable = sum(1 for r in records if r["answerable"])
    print(
        f"{len(records)} questions ({answerable} answerable, {len(records) - answerable} not, "
        f"{sum(1 for r in records if r.get('history'))} with history, "
        f"{sum(1 for r in records if r.get('lang') == 'en')} in English); "
        f"{len(problems)} problem(s), {len(report.warnings)} warning(s)"
    )
    if not args.check and (args.force or not problems):
        args.output.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(r, ensure_ascii=False) for r in records]
        args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    elif not args.check:
        print(f"not writing {args.output}: fix the problems first", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
