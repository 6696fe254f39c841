"""Find the other documents that also answer each gold question, and record them as ``also``.

The sample corpus repeats facts on purpose (the FAQ and the glossary restate what the guides
say), but each question names the one document its writer had in mind. Retrieving another
document that holds the same answer is not a miss, so this tool lists, per answerable
question, every other document with one passage (as the assistant chunks it) that contains
*all* the question's key facts *and* at least half of the question's content words. `alliance
eval` counts ``gold`` and ``also`` as relevant and prints strict figures (``gold`` only) too.

    python tools/alt_gold.py eval/questions.jsonl          # rewrite the file in place
    python tools/alt_gold.py eval/questions.jsonl --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.evaluation.metrics import fact_coverage  # noqa: E402
from assistant.ingest.chunking import split_pages  # noqa: E402
from assistant.ingest.loaders import discover, load_document  # noqa: E402
from assistant.retrieval.followup import contextualize  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.text.french import content_words  # noqa: E402

MIN_QUESTION_OVERLAP = 0.5


def passages(corpus: Path) -> list[tuple[str, int | None, str]]:
    """(source, page, text) of every chunk the assistant would index."""
    settings = Settings(corpus_dir=corpus)
    out: list[tuple[str, int | None, str]] = []
    for path in discover(corpus):
        doc = load_document(path, corpus)
        for chunk in split_pages(doc.pages, settings.chunk_size, settings.chunk_overlap):
            out.append((doc.source, chunk.metadata.get("page"), chunk.page_content))
    return out


def also_for(
    record: dict[str, Any], chunks: list[tuple[str, int | None, str]]
) -> list[dict[str, Any]]:
    facts = record.get("facts") or []
    if not record.get("answerable") or not facts:
        return []
    if len(facts) == 1 and " " not in facts[0].strip() and not any(c.isdigit() for c in facts[0]):
        return []  # one plain word (« projets ») is too common to identify an answer
    gold = {g["source"] for g in record["gold"]}
    words = content_words(contextualize(record["question"], record.get("history") or []))
    found: dict[str, dict[str, Any]] = {}
    for source, page, text in chunks:
        if source in gold or source in found:
            continue
        if fact_coverage(text, facts) < 1.0:
            continue
        if not words or len(words & content_words(text)) / len(words) < MIN_QUESTION_OVERLAP:
            continue
        found[source] = {"source": source} | ({"page": page} if page else {})
    return sorted(found.values(), key=lambda g: g["source"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    lines = args.questions.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    chunks = passages(args.corpus)
    changed = 0
    for record in records:
        also = also_for(record, chunks)
        if (record.get("also") or []) != also:
            changed += 1
        record.pop("also", None)
        if also:
            record["also"] = also
    with_also = sum(1 for r in records if r.get("also"))
    print(f"{with_also} of {len(records)} questions have other documents that also answer them")
    if args.check:
        if changed:
            print(f"{changed} questions out of date: run tools/alt_gold.py", file=sys.stderr)
        return 1 if changed else 0
    out = "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    args.questions.write_text(out, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
