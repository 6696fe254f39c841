"""The shipped sample corpus and its evaluation questions meet their contract.

Also exercises the two corpus tools (``tools/build_corpus_pdfs.py``, ``tools/gold_pages.py``)
on small sources written in tmp_path. No model is loaded; everything runs in seconds.

English questions are those marked ``"lang": "en"`` or, when ``lang`` is absent, those a tiny
function-word heuristic (:func:`looks_english`) recognises.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest
from conftest import load_tool
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SOURCES = CORPUS / "_src"
QUESTIONS = ROOT / "eval" / "questions.jsonl"
DOC_SUFFIXES = {".pdf", ".html", ".htm", ".md", ".txt"}
# « Document d'exemple rédigé pour… » (or « Page d'exemple… » on a web page)
NOTE_RE = re.compile(r"\b(document|page|fiche|texte|version) d['’]exemple", re.I)


def corpus_documents() -> list[Path]:
    """Indexable documents: not under ``_``/``.`` folders, not README files."""
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file()
        and p.suffix.lower() in DOC_SUFFIXES
        and not any(part.startswith(("_", ".")) for part in p.relative_to(CORPUS).parts)
        and p.stem.upper() != "README"
    )


def article_html(markup: str) -> str:
    """The ``<main>`` (or ``<article>``) part of an HTML page."""
    for tag in ("main", "article"):
        match = re.search(rf"(?is)<{tag}\b.*?</{tag}\s*>", markup)
        if match:
            return match.group(0)
    return markup


@cache
def document_text(path: Path) -> str:
    """Text a reader sees: PDF pages via pypdf, the main part of HTML pages, Markdown as is."""
    if path.suffix.lower() == ".pdf":
        return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".html", ".htm"):
        gold_pages = load_tool("gold_pages")
        return str(gold_pages.html_visible_text(article_html(raw)))
    return raw


EN_WORDS = {
    "the",
    "what",
    "how",
    "is",
    "are",
    "does",
    "do",
    "which",
    "who",
    "can",
    "and",
    "of",
    "for",
    "with",
    "to",
    "why",
    "when",
    "i",
    "my",
    "should",
    "there",
    "an",
}
FR_WORDS = {
    "le",
    "la",
    "les",
    "est",
    "quoi",
    "comment",
    "des",
    "une",
    "un",
    "pour",
    "qui",
    "que",
    "quel",
    "quelle",
    "et",
    "du",
    "de",
    "je",
    "on",
    "faire",
    "au",
    "sont",
}


def looks_english(text: str) -> bool:
    """Tiny heuristic: more English than French function words."""
    words = re.findall(r"[a-zà-ÿ']+", text.lower())
    english = sum(w in EN_WORDS for w in words)
    return english >= 2 and english > sum(w in FR_WORDS for w in words)


def is_english(question: dict) -> bool:
    return (
        question.get("lang") == "en" if "lang" in question else looks_english(question["question"])
    )


@cache
def questions() -> tuple[dict, ...]:
    if not QUESTIONS.is_file():
        pytest.fail(f"{QUESTIONS} is missing: run tools/gold_pages.py eval/parts/*.jsonl")
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


# ------------------------------------------------------------------- the corpus


def test_corpus_has_enough_documents_and_words() -> None:
    docs = corpus_documents()
    words = sum(len(document_text(p).split()) for p in docs)
    assert len(docs) >= 20, f"only {len(docs)} documents"
    assert words >= 35_000, f"only {words} words"


def test_pdfs_are_many_and_long_enough() -> None:
    pdfs = [p for p in corpus_documents() if p.suffix == ".pdf"]
    pages = sum(len(PdfReader(p).pages) for p in pdfs)
    assert len(pdfs) >= 12, f"only {len(pdfs)} PDFs"
    assert pages >= 80, f"only {pages} PDF pages"


@pytest.mark.parametrize("path", corpus_documents(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_every_document_opens_with_the_sample_note(path: Path) -> None:
    head = " ".join(document_text(path).split())[:800]
    assert NOTE_RE.search(head), f"no « document d'exemple » note near the top: {head[:200]!r}"


def test_there_are_enough_html_pages() -> None:
    pages = [p for p in corpus_documents() if p.suffix.lower() in (".html", ".htm")]
    assert len(pages) >= 6, f"only {len(pages)} HTML pages"


@pytest.mark.parametrize(
    "path",
    [p for p in corpus_documents() if p.suffix.lower() in (".html", ".htm")],
    ids=lambda p: str(p.relative_to(CORPUS)),
)
def test_html_pages_look_like_real_web_pages(path: Path) -> None:
    markup = path.read_text(encoding="utf-8")
    lower = markup.lower()
    assert lower.lstrip().startswith("<!doctype html>")
    assert re.search(r"<meta\s+charset=", lower) and "<title>" in lower
    nav, footer = lower.find("<nav"), lower.rfind("<footer")
    content = min(i for i in (lower.find("<main"), lower.find("<article")) if i >= 0)
    cookie = re.search(r"<[a-z]+[^>]*(id|class)=\"[^\"]*(cookie|consent)[^\"]*\"", lower)
    assert nav >= 0 and footer >= 0 and cookie, "needs <nav>, a cookie banner and <footer>"
    assert nav < content < footer, "nav and footer must surround the article"
    assert not re.search(r"(src|href)=\"(https?:)?//", lower), "no external resources"


@pytest.mark.parametrize(
    "source", sorted(SOURCES.rglob("*.md")), ids=lambda p: str(p.relative_to(SOURCES))
)
def test_every_pdf_is_up_to_date_with_its_source(source: Path) -> None:
    build = load_tool("build_corpus_pdfs")
    pdf = build.output_path(source, SOURCES, CORPUS)
    assert pdf.is_file(), f"{pdf} missing: run python tools/build_corpus_pdfs.py"
    meta = PdfReader(pdf).metadata
    stamp = build.source_stamp(source.read_text(encoding="utf-8"))
    assert meta is not None and meta.get("/Keywords") == stamp, (
        f"{pdf} is stale: run python tools/build_corpus_pdfs.py"
    )


# ------------------------------------------------------------------ the questions


def test_question_counts() -> None:
    qs = questions()
    answerable = [q for q in qs if q["answerable"]]
    assert len(qs) >= 120, f"only {len(qs)} questions"
    assert len(answerable) >= 90, f"only {len(answerable)} answerable"
    assert len(qs) - len(answerable) >= 20, f"only {len(qs) - len(answerable)} unanswerable"
    assert sum(1 for q in qs if q.get("history")) >= 10
    assert sum(1 for q in qs if is_english(q)) >= 5


def test_gold_sources_exist_and_cover_every_document() -> None:
    gold = {g["source"] for q in questions() for g in q["gold"]}
    missing = sorted(s for s in gold if not (CORPUS / s).is_file())
    assert not missing, f"gold sources missing: {missing}"
    docs = {str(p.relative_to(CORPUS)) for p in corpus_documents()}
    uncovered = sorted(docs - gold)
    assert not uncovered, f"documents no question points to: {uncovered}"


def test_gold_pages_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    gold_pages = load_tool("gold_pages")
    status = gold_pages.main(["--check", "-o", str(QUESTIONS)])
    assert status == 0, capsys.readouterr().err


# ------------------------------------------------------------------ the tools


NASTY_SOURCE = """---
title: Un **titre** accentué — « œuvre »
subtitle: Sous-titre à 3 €
author: Équipe Alliance (exemple)
date: 2021-11-30
layout: {layout}   # a trailing comment
---
> Document d'exemple : une *note* encadrée.

# Première partie
Texte avec **gras**, *italique*, un tiret -- double, snake__case et une note[^1]. Le
mot co-construction reste entier.

1. Étape une
2. Étape deux
- puce
  - sous-puce

| Acteur | Rôle |
|---|---|
| Association | {cell} |
| Entreprise \\| mécène | Finance |

[^1]: Une note avec des accents : éàù.

<!-- pagebreak -->
## Seconde partie
{body}
"""


def render_nasty(layout: str) -> bytes:
    build = load_tool("build_corpus_pdfs")
    body = "\n\n".join(f"Paragraphe {i} du partenariat entre acteurs. " * 12 for i in range(30))
    text = NASTY_SOURCE.format(layout=layout, cell="cellule très longue " * 20, body=body)
    return bytes(build.render_pdf(text, "nasty"))


@pytest.mark.parametrize("layout", ["report", "two-columns", "plain"])
def test_builder_is_deterministic_and_extracts_cleanly(layout: str, tmp_path: Path) -> None:
    data = render_nasty(layout)
    assert data == render_nasty(layout)
    path = tmp_path / "nasty.pdf"
    path.write_bytes(data)
    reader = PdfReader(path)
    first = " ".join(reader.pages[0].extract_text().split())
    assert "Un titre accentué — « œuvre »" in first
    assert "Texte avec gras, italique, un tiret -- double, snake__case et une note¹." in first
    assert "Une note avec des accents : éàù." in first
    assert "Entreprise |" in first  # escaped pipe inside a cell
    assert reader.metadata is not None and reader.metadata.title == "Un titre accentué — « œuvre »"
    assert reader.metadata.author == "Équipe Alliance (exemple)"
    second = reader.pages[1].extract_text()
    assert ("Un titre accentué — « œuvre »" in second) == (layout != "plain")  # running header
    assert len(reader.pages) >= 4
    last = reader.pages[-1].extract_text()
    footer = f"page {len(reader.pages)} / {len(reader.pages)}"
    assert (footer in last) == (layout != "plain")


def test_builder_rejects_an_unknown_layout() -> None:
    build = load_tool("build_corpus_pdfs")
    with pytest.raises(ValueError, match="layout"):
        build.render_pdf("---\ntitle: x\nlayout: fancy\n---\ntexte\n", "x")


def test_normalise_joins_hyphenation_and_drops_markers() -> None:
    gold_pages = load_tool("gold_pages")
    page = "Le parte-\nnariat d’intérêt  général¹ repose\nsur la co-\nconstruction."
    assert gold_pages.contains(page, "le partenariat d'intérêt général[^1] repose sur")
    assert gold_pages.contains(page, "repose sur la co-construction")
    assert not gold_pages.contains(page, "partenariat privé")


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")


def test_gold_pages_pins_pages_and_reports_problems(tmp_path: Path) -> None:
    gold_pages = load_tool("gold_pages")
    corpus = tmp_path / "corpus"
    (corpus / "recits").mkdir(parents=True)
    (corpus / "recits" / "doc.pdf").write_bytes(render_nasty("report"))
    (corpus / "recits" / "page.html").write_text(
        "<!DOCTYPE html><html><body><nav>menu</nav><main><p>La charte a été signée le "
        "30&nbsp;novembre 2021.</p></main><footer>mentions</footer></body></html>",
        encoding="utf-8",
    )
    good = [
        {
            "id": "a",
            "question": "q ?",
            "type": "what",
            "answerable": True,
            "facts": ["Seconde partie"],
            "gold": [{"source": "recits/doc.pdf"}],
            "evidence": "Seconde partie",
        },
        {
            "id": "b",
            "question": "when?",
            "type": "when",
            "answerable": True,
            "facts": ["30 novembre 2021"],
            "gold": [{"source": "recits/page.html"}],
            "lang": "en",
            "evidence": "La charte a été signée le 30 novembre 2021",
        },
        {
            "id": "c",
            "question": "crêpes ?",
            "type": "unanswerable",
            "answerable": False,
            "gold": [],
            "facts": [],
            "history": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
        },
    ]
    write_jsonl(tmp_path / "a.jsonl", good)
    out = tmp_path / "questions.jsonl"
    argv = [str(tmp_path / "a.jsonl"), "-o", str(out), "--corpus", str(corpus)]
    assert gold_pages.main(argv) == 0
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert written[0]["gold"] == [{"source": "recits/doc.pdf", "page": 2}]
    assert gold_pages.main(["--check", "-o", str(out), "--corpus", str(corpus)]) == 0

    bad: list[dict] = [
        {**good[0], "id": "a"},  # duplicate id
        {**good[0], "id": "d", "evidence": "absent de partout"},
        {**good[0], "id": "e", "gold": [{"source": "recits/none.pdf"}]},
        {**good[2], "id": "f", "facts": ["x"]},
        {"id": "g", "question": "", "answerable": "yes", "gold": [], "facts": []},
    ]
    write_jsonl(tmp_path / "b.jsonl", bad)
    records = gold_pages.read_jsonl(
        [tmp_path / "a.jsonl", tmp_path / "b.jsonl"], gold_pages.Report()
    )
    _, report = gold_pages.validate(records, corpus)
    text = "\n".join(report.problems)
    assert "duplicate id 'a'" in text
    assert "evidence not found" in text
    assert "does not exist" in text
    assert "unanswerable questions must have empty" in text
    assert "'question' must be a non-empty string" in text
    assert "'type' must be one of" in text  # g has no type
    assert len(report.problems) == 7
