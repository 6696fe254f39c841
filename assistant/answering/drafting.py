"""What a small local model is given and what of its draft is kept before attribution.

On 2 cores the prompt is what the first token waits for (llama.cpp read it at ~50 tokens/s on
one thread here, the fixed system prompt cached between answers), so the model gets only the
passages the extractive answerer chose, the right section, then the next retrieved passages
while a character budget lasts:

    passages = chosen_passages(extractive_answer, retrieval, most=3, budget=1100)

Its draft is then screened sentence by sentence, before any passage is matched: a sentence in
another language than the question's (French, the corpus's, always passes), or a placeholder
(the prompt's own markup or example, a template slot, a question instead of an answer), is
dropped with its reason:

    kept, dropped = screen(split_answer(raw), question)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answering.abstention import is_english
from assistant.answering.citations import LIST_PREFIX
from assistant.indexing.store import StoredChunk
from assistant.retrieval.results import Retrieval, Scored
from assistant.text.french import fold
from assistant.types import Answer, Hit

# The smallest piece of a passage worth sending: below this the budget stops adding passages.
MIN_PASSAGE_CHARS = 200


def chosen_passages(
    extractive: Answer, retrieval: Retrieval, *, most: int, budget: int
) -> list[Scored]:
    """The passages the extractive answer quotes (the chosen section, in its order), then the
    best retrieved ones not yet in, at most ``most``, each cut so that the whole stays within
    ``budget`` characters (the first one always sent, cut to the budget)."""
    by_id = {r.chunk.id: r for r in retrieval.results}
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
        picked.append(_cut(cand, left))
        left -= len(picked[-1].chunk.text)
    return picked


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
    r"\br[ée]ponds (?:à la question|uniquement|dans la langue)",  # the prompt's instructions
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


def screen_reason(sentence: str, question: str) -> str:
    """Why ``sentence`` of a draft answering ``question`` is not an answer ("" when it may
    be one): ``language: en`` for English in the answer to a French question, ``language:
    other`` for a script neither language uses, ``placeholder`` for markup, template slots,
    filler or no word at all, ``question`` for a question."""
    body = sentence.strip()
    if _FOREIGN_SCRIPT.search(body):
        return "language: other"
    if not _LETTERS.search(body) or _PLACEHOLDER.search(body):
        return "placeholder"
    if body.rstrip('*_ )»"').endswith("?"):
        return "question"
    # French is the corpus's language: quoting it is fine whatever the question's language
    if language_of(body) == "en" and not is_english(question):
        return "language: en"
    return ""


def screen(
    lines: Sequence[Sequence[str]], question: str
) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """``lines`` (``citations.split_answer``) without the sentences :func:`screen_reason` refuses,
    and those as ``(sentence, reason)``."""
    kept: list[list[str]] = []
    dropped: list[tuple[str, str]] = []
    for units in lines:
        row: list[str] = []
        for raw in units:
            prefix = LIST_PREFIX.match(raw)
            head = prefix.group(0) if prefix else ""
            unit = head + without_meta(raw[len(head) :])
            reason = screen_reason(unit[len(head) :], question)
            if reason:
                dropped.append((unit, reason))
            else:
                row.append(unit)
        kept.append(row)
    return kept, dropped
