"""What a small local model is given and what of its draft is kept before attribution.

On 2 cores the prompt is what the first token waits for (llama.cpp read it at ~50 tokens/s on
one thread here, the fixed system prompt cached between answers), so the model gets only the
passages the extractive answerer chose, the right section, then the next retrieved passages
while a character budget lasts:

    passages = chosen_passages(extractive_answer, retrieval, most=3, budget=1100)

The model answers in the language of the passages it is given, not of the question: our code
can only match a sentence to a passage written in the same language (an English sentence shares
no content word with a French passage), so an English question over French passages gets a
French answer under an English framing line (``framing``), as the extracts do:

    lang = answer_language(question, passages)    # "fr" for French passages, whatever is asked

Its draft is then screened sentence by sentence, before any passage is matched: a sentence in
none of the passages' languages, or a placeholder (the prompt's own markup or example, a
template slot, a question instead of an answer), is dropped with its reason:

    kept, dropped = screen(split_answer(raw), passage_languages(passages, question))

Once checked, the model's answer must hold what the extracts held: an extract whose words and
facts it lost is added back, cited, and a list it shortened is replaced by the extracts' whole
list (``complete_with_extracts``), so a rewrite never covers fewer facts than the quotes:

    final = complete_with_extracts(checked, extractive_answer)
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Collection, Sequence

from assistant.answering.abstention import is_english
from assistant.answering.attribution import missing_facts
from assistant.answering.citations import compose, quoted_units
from assistant.indexing.store import StoredChunk
from assistant.retrieval.results import Retrieval, Scored
from assistant.text.french import content_words, fold
from assistant.text.structure import LIST_ITEM
from assistant.types import Answer, Hit

# The smallest piece of a passage worth sending: below this the budget stops adding passages.
MIN_PASSAGE_CHARS = 200


def chosen_passages(
    extractive: Answer, retrieval: Retrieval, *, most: int, budget: int
) -> list[Scored]:
    """The passages the extractive answer quotes (the chosen section, in its order), then the
    best retrieved ones not yet in, at most ``most``, each cut so that the whole stays within
    ``budget`` characters (the first one always sent, cut to the budget). A quoted passage too
    long for what is left of the budget is sent as the block the extracts quote from it (its
    chosen sentences or list items), not as its first characters."""
    by_id = {r.chunk.id: r for r in retrieval.results}
    blocks = quoted_blocks(extractive)
    picked: list[Scored] = []
    seen: set[str] = set()
    candidates = [by_id.get(h.chunk_id) or _scored(h) for h in extractive.citations]
    candidates += list(retrieval.results)
    left = budget
    for cand in candidates:
        if len(picked) >= most or cand.chunk.id in seen:
            continue
        if picked and left < MIN_PASSAGE_CHARS:
            break
        seen.add(cand.chunk.id)
        block = blocks.get(cand.chunk.id)
        if block and len(cand.chunk.text.strip()) > left and len(block) < len(cand.chunk.text):
            cand = _with_text(cand, block)
        picked.append(_cut(cand, left))
        left -= len(picked[-1].chunk.text)
    return picked


def quoted_blocks(answer: Answer) -> dict[str, str]:
    """Per chunk an answer cites, the text it quotes from it: its units in order, list items
    on their own lines."""
    units: dict[str, list[str]] = {}
    for line in answer.text.splitlines():
        for text, n in quoted_units(line):
            if 1 <= n <= len(answer.citations):
                units.setdefault(answer.citations[n - 1].chunk_id, []).append(text)
    out: dict[str, str] = {}
    for chunk_id, texts in units.items():
        block = ""
        for text in texts:
            sep = "\n" if LIST_ITEM.match(text) else " "
            block = f"{block}{sep}{text}" if block else text
        out[chunk_id] = block
    return out


def _with_text(result: Scored, text: str) -> Scored:
    chunk = StoredChunk(result.chunk.id, text, result.chunk.metadata)
    return dataclasses.replace(result, chunk=chunk)


def _scored(hit: Hit) -> Scored:
    """A cited chunk that was read from the section around a hit, not retrieved itself."""
    meta: dict[str, object] = {"source": hit.source, "title": hit.title, "kind": hit.kind}
    if hit.page is not None:
        meta["page"] = hit.page
    return Scored(StoredChunk(hit.chunk_id, hit.text, meta), hit.score, 0.0, 0.0, None, None)


def _cut(result: Scored, chars: int) -> Scored:
    """``result`` with its text cut at a line or a word before ``chars`` characters."""
    text = result.chunk.text.strip()
    if len(text) <= chars:
        return result
    head = text[:chars]
    cut = head.rfind("\n")
    if cut < chars // 2:
        cut = head.rfind(" ")
    text = head[: max(cut, 1)].rstrip() + " …"
    chunk = StoredChunk(result.chunk.id, text, result.chunk.metadata)
    return Scored(
        chunk, result.fused, result.dense, result.bm25, result.dense_rank, result.bm25_rank
    )


# -- screening the draft --------------------------------------------------------------------
def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Scripts a French or English answer never needs (the Qwen models fall back to Chinese).
_FOREIGN_SCRIPT = re.compile(
    r"[\u0400-\u04ff\u0590-\u06ff\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]"
)
_FR_WORDS = _wordset(
    "le la les un une des du de et est sont pour dans avec sur par qui que au aux ce cette ces "
    "il elle ils elles nous vous leur leurs son sa ses ou mais donc pas plus etre avoir peut "
    "doit faut entre comme aussi tres"
)
_EN_WORDS = _wordset(
    "the an and is are for in with by who that this these those it they we you their its "
    "not more be have can must should of to from also very which"
)
# The prompt's own markup or example, template slots, filler: never an answer.
_PLACEHOLDER = re.compile(
    r"‹/?passages?\b|</?passages?\b|</?question\b|\[\s*(?:n|x|\.\.\.|…)\s*\]|\{\{?|\}\}?|"
    r"\bpassages? (?:n°\s*)?\d\b|\bpassages? (?:fourni|num[ée]rot)|\blorem ipsum\b|"
    r"\bxxx+\b|\[(?:votre|your|insert|ins[ée]rer|nom|name)\b|^`{3}|"
    r"\b(?:je suis|en tant qu')(?: un)? (?:assistant|mod[èe]le|ia)\b|"
    r"\br[ée]ponds (?:à la question|uniquement|dans la langue|en (?:français|anglais))|"
    r"\banswer the question from the passages",  # the prompt's instructions
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[^\W\d_]{2,}")
# « Selon le passage 2, … », « … (passage 1) »: where the model read it, which the reader does
# not see; removed, the sentence kept.
_META_LEAD = re.compile(
    r"^(?:selon|d'après|d’après|dans|comme (?:l'|l’)indique|according to|in) (?:le |les |la )?"
    r"(?:passages?|extraits?|sources?|documents?) ?(?:n° ?)?\d+(?: (?:et|and|,) ?\d+)*\s*,?\s*",
    re.IGNORECASE,
)
_META_ANYWHERE = re.compile(
    r"\s*\((?:voir |see |cf\.? )?(?:le |les )?(?:passages?|extraits?|sources?) ?(?:n° ?)?\d+"
    r"(?: (?:et|and|,) ?\d+)*\)",
    re.IGNORECASE,
)


def without_meta(sentence: str) -> str:
    """``sentence`` without a reference to the numbered passages it was read from."""
    out = _META_ANYWHERE.sub("", sentence)
    lead = _META_LEAD.match(out)
    if lead and out[lead.end() :].strip():
        rest = out[lead.end() :]
        out = rest[0].upper() + rest[1:]
    return out


def language_of(text: str) -> str:
    """``fr``, ``en``, ``other`` (a script neither uses) or ``?`` (too few function words)."""
    if _FOREIGN_SCRIPT.search(text):
        return "other"
    words = re.findall(r"[a-z]+", fold(text))
    fr = sum(w in _FR_WORDS for w in words)
    en = sum(w in _EN_WORDS for w in words)
    if fr >= 2 and fr > en:
        return "fr"
    if en >= 2 and en > fr:
        return "en"
    return "?"


# The languages a draft may be screened for, each named in French and in English (the prompt's
# request and the framing line say which language the answer is in).
LANGUAGES = {"fr": ("français", "French"), "en": ("anglais", "English")}


def question_language(question: str) -> str:
    """``en`` for an English question, else ``fr`` (the product's language)."""
    return "en" if is_english(question) else "fr"


def passage_languages(passages: Sequence[Scored], question: str) -> frozenset[str]:
    """The languages (``fr``, ``en``) the given passages are written in; the question's when
    none can be told (too short, or a script neither uses)."""
    langs = {language_of(p.chunk.text) for p in passages} & set(LANGUAGES)
    return frozenset(langs or {question_language(question)})


def answer_language(question: str, passages: Sequence[Scored]) -> str:
    """The language the model must write in: the one most of the passages' text is in (our
    code matches a sentence to a passage by shared words, so a sentence in another language
    than its passage is always dropped); the question's when the passages are mixed evenly
    or cannot be told."""
    chars: Counter[str] = Counter()
    for p in passages:
        lang = language_of(p.chunk.text)
        if lang in LANGUAGES:
            chars[lang] += len(p.chunk.text)
    asked = question_language(question)
    if not chars:
        return asked
    (top, most), *rest = chars.most_common()
    if rest and rest[0][1] == most:
        return asked if asked in chars else top
    return top


def framing(question: str, language: str) -> str:
    """The line, in the question's language, that says the answer is in another one ("" when
    the answer is in the question's language)."""
    asked = question_language(question)
    if language == asked or language not in LANGUAGES:
        return ""
    french, english = LANGUAGES[language]
    if asked == "en":
        return f"The sources are in {english}; this answer, written from them, is in {english}:"
    return f"Les sources sont en {french} ; cette réponse, rédigée d'après elles, aussi :"


def screen_reason(sentence: str, languages: Collection[str]) -> str:
    """Why ``sentence`` of a draft is not an answer ("" when it may be one): ``language: en``
    for a sentence in none of ``languages`` (those of the passages, see
    :func:`passage_languages`), ``language: other`` for a script neither French nor English
    uses, ``placeholder`` for markup, template slots, filler or no word at all, ``question``
    for a question."""
    body = sentence.strip()
    if _FOREIGN_SCRIPT.search(body):
        return "language: other"
    if not _LETTERS.search(body) or _PLACEHOLDER.search(body):
        return "placeholder"
    if body.rstrip('*_ )»"').endswith("?"):
        return "question"
    lang = language_of(body)
    if lang in LANGUAGES and lang not in languages:
        return f"language: {lang}"
    return ""


def screen(
    lines: Sequence[Sequence[str]], languages: Collection[str]
) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """``lines`` (``citations.split_answer``) without the sentences :func:`screen_reason` refuses
    (``languages``: those a sentence may be in), and those as ``(sentence, reason)``."""
    kept: list[list[str]] = []
    dropped: list[tuple[str, str]] = []
    for units in lines:
        row: list[str] = []
        for raw in units:
            prefix = LIST_ITEM.match(raw)
            head = prefix.group(0) if prefix else ""
            unit = head + without_meta(raw[len(head) :])
            reason = screen_reason(unit[len(head) :], languages)
            if reason:
                dropped.append((unit, reason))
            else:
                row.append(unit)
        kept.append(row)
    return kept, dropped


# -- completing the model's answer with the extracts it lost ----------------------------------
# An extract counts as kept when this share of its content words is in the model's answer (and
# all its numbers and names): a paraphrase keeps most words of what it rewrites.
MIN_KEPT_SHARE = 0.7


def kept_in(unit: str, text: str, words: set[str] | None = None) -> bool:
    """Whether ``text`` (a model's answer) holds the extract ``unit``: most of its content
    words and every number, date and name in it."""
    body = LIST_ITEM.sub("", unit).strip()
    mine = content_words(body)
    if not mine:
        return True
    theirs = content_words(text) if words is None else words
    if len(mine & theirs) / len(mine) < MIN_KEPT_SHARE:
        return False
    return not missing_facts(body, text)


def _is_lead_in(text: str) -> bool:
    """A sentence that announces what follows (« … sont les suivants : »)."""
    return text.rstrip().endswith(":")


def complete_with_extracts(answer: Answer, extractive: Answer) -> Answer:
    """``answer`` (a model's, checked and cited) with the extracts of ``extractive`` it lacks:
    when a list item of the extracts is missing, the model's own list lines give way to the
    extracts' whole list, in their place (a list cut short or reordered reads wrong once
    completed), under the model's lead-in if it wrote one, else the extracts'; any other
    missing extract is added after the model's text. A lead-in is never added without its
    list. Markers are renumbered over both answers' citations in order of first use.
    ``completed`` counts the extracts added."""
    words = content_words(answer.text)
    ext_lines = [quoted_units(line) for line in extractive.text.splitlines()]
    ext_units = [(t, extractive.citations[n - 1]) for units in ext_lines for t, n in units
                 if 1 <= n <= len(extractive.citations)]  # fmt: skip
    missing = [(t, h) for t, h in ext_units if not kept_in(t, answer.text, words)]
    if not missing:
        return answer
    whole_list = any(LIST_ITEM.match(t) for t, _ in missing)
    items = [(t, h) for t, h in ext_units if whole_list and LIST_ITEM.match(t)]
    first = next((i for i, u in enumerate(ext_units) if u in items), None)
    ext_lead = ext_units[first - 1] if first and _is_lead_in(ext_units[first - 1][0]) else None
    rows: list[str | list[tuple[str, Hit]]] = []  # a line as is (no marker), or its units
    at: int | None = None  # where the model's list was: the extracts' list goes there
    for line in answer.text.splitlines():
        units = quoted_units(line)
        if not units:
            rows.append(line)
            continue
        if whole_list and LIST_ITEM.match(line.strip()):
            at = len(rows) if at is None else at
            continue  # the extracts' list replaces the model's
        rows.append([(t, answer.citations[n - 1]) for t, n in units
                     if 1 <= n <= len(answer.citations)])  # fmt: skip
    if at is None:
        at = len(rows)
    before = rows[at - 1] if at else None
    model_lead = isinstance(before, list) and bool(before) and _is_lead_in(before[-1][0])
    listed = ([] if model_lead or ext_lead is None else [ext_lead]) + items
    rest = [(t, h) for t, h in missing
            if not LIST_ITEM.match(t) and not _is_lead_in(t) and (t, h) != ext_lead]  # fmt: skip
    rows[at:at] = [[unit] for unit in listed]
    rows += [[unit] for unit in rest]
    added = listed + rest
    numbers: dict[str, int] = {}
    citations: list[Hit] = []
    out: list[str] = []
    for row in rows:
        if isinstance(row, str):
            out.append(row)
            continue
        pairs = []
        for text, hit in row:
            if hit.chunk_id not in numbers:
                citations.append(hit)
                numbers[hit.chunk_id] = len(citations)
            pairs.append((text, numbers[hit.chunk_id]))
        if pairs:
            out.append(compose(pairs))
    return dataclasses.replace(
        answer, text="\n".join(out).strip(), citations=citations, completed=len(added)
    )
