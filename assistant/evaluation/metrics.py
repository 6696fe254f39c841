"""Pure evaluation metrics: retrieval (recall@k, reciprocal rank), answers (fact coverage), latency.

recall_at_k(["d3", "d1"], {"d1"}, k=2)        # 1.0
fact_coverage("Budget : 1,5 million d'euros.", ["1,5 M€"])   # 1.0
evidence_recall(["Le Fonds a été créé en 2020."], ["2020", "Fondation"])   # 0.5
percentile([10.0, 20.0, 30.0], 50)           # 20.0
unsupported_facts("Créé en 2019. [1]", ["Créé en 2016."])   # ['2019']
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence

from assistant.answering.attribution import missing_facts
from assistant.answering.citations import MARKER, quoted_units
from assistant.text.french import FRENCH_NUMBERS, content_words, fold


def _check_gold(gold: Collection[str]) -> None:
    if not gold:
        raise ValueError("gold is empty: a question without expected documents cannot be scored")


def recall_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """1.0 if any gold id is among the first ``k`` of ``ranked``, else 0.0 (hit rate)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _check_gold(gold)
    return 1.0 if any(item in gold for item in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Collection[str]) -> float:
    """1 / (1-based rank of the first gold id in ``ranked``); 0.0 if none is there."""
    _check_gold(gold)
    for rank, item in enumerate(ranked, start=1):
        if item in gold:
            return 1.0 / rank
    return 0.0


def dedupe_keep_order(items: Iterable[str]) -> list[str]:
    """First occurrence of each item, in order: ranked documents from ranked chunks."""
    return list(dict.fromkeys(items))


# Units written many ways in French answers, mapped to one spelling before comparison.
_UNITS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:m€|meur|m ?eur(?:os?)?|millions? d ?euros?)(?!\w)"), " million euros "),
    (re.compile(r"\b(?:md€|mds? ?€|mrd ?€|milliards? d ?euros?)(?!\w)"), " milliard euros "),
    (re.compile(r"\b(?:k€|keur|milliers? d ?euros?|mille euros?)(?!\w)"), " mille euros "),
    (re.compile(r"€|\beur\b|\beuro\b"), " euros "),
    (re.compile(r"%|\bpour ?cent\b|\bpercent\b"), " pourcent "),
]
# French number words, written out or in digits (« cinq étapes » = « 5 étapes »), mapped to digits
# on both sides before comparison. « un »/« une » are left alone: they are articles far more often.
_SMALL_NUMBERS = FRENCH_NUMBERS
_TENS_WORDS = {"vingt": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60}
_ONES = {"un": 1, **{w: n for w, n in _SMALL_NUMBERS.items() if n < 10}}
_NUMBER_WORD = re.compile(
    rf"\b(?:(?P<tens>{'|'.join(_TENS_WORDS)})(?:[- ](?:et[- ])?(?P<one>{'|'.join(_ONES)}))?"
    rf"|dix[- ](?P<teen>sept|huit|neuf)|(?P<unit>{'|'.join(_SMALL_NUMBERS)}))\b"
)


def _number_word(m: re.Match[str]) -> str:
    if m.group("tens"):
        return str(_TENS_WORDS[m.group("tens")] + _ONES.get(m.group("one") or "", 0))
    if m.group("teen"):
        return str(10 + _SMALL_NUMBERS[m.group("teen")])
    return str(_SMALL_NUMBERS[m.group("unit")])


_THOUSANDS = re.compile(r"(?<=\d)[ .](?=\d{3}(?!\d))")
_DECIMAL = re.compile(r"(?<=\d),(?=\d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PUNCT = re.compile(r"[^\w.]+|(?<!\d)\.|\.(?!\d)")


def _normalize(text: str) -> str:
    """Folded, units unified, "1 500" -> "1500", "1,5" -> "1.5", "cinq" -> "5", punctuation ->
    spaces."""
    text = fold(text).replace("'", " ")
    text = _NUMBER_WORD.sub(_number_word, text)
    text = re.sub(r"\s+", " ", text)
    text = _THOUSANDS.sub("", text)
    text = _DECIMAL.sub(".", text)
    for pattern, replacement in _UNITS:
        text = pattern.sub(replacement, text)
    text = _PUNCT.sub(" ", text)
    return " ".join(text.split())


def _numbers(normalized: str) -> list[str]:
    return _NUMBER.findall(normalized)


def _fact_found(fact: str, answer_norm: str, answer_words: set[str], share: float) -> bool:
    fact_norm = _normalize(fact)
    if not fact_norm:
        return True
    if re.search(rf"(?<![\w.]){re.escape(fact_norm)}(?![\w]|\.\d)", answer_norm):
        return True
    answer_numbers = set(_numbers(answer_norm))
    if any(n not in answer_numbers for n in _numbers(fact_norm)):
        return False
    words = {w for w in content_words(fact_norm) if not _NUMBER.fullmatch(w)}
    if not words:
        return bool(_numbers(fact_norm))
    return len(words & answer_words) / len(words) >= share


def fact_coverage(answer: str, facts: Sequence[str], min_word_share: float = 0.75) -> float:
    """Share of ``facts`` found in ``answer``; empty ``facts`` -> 1.0.

    A fact is found when its normalised form (folded, units unified: "M€" = "millions d'euros",
    "%" = "pour cent", "1,5" = "1.5", "cinq" = "5") appears in the answer, or when every number
    of the fact appears in the answer and at least ``min_word_share`` of its other content words
    (stems) do.
    Best effort: numbers must match exactly, words only by stem.
    """
    if not 0.0 <= min_word_share <= 1.0:
        raise ValueError(f"min_word_share must be in [0, 1], got {min_word_share!r}")
    if isinstance(facts, str):
        raise ValueError("facts must be a sequence of strings, not one string")
    if not facts:
        return 1.0
    answer_norm = _normalize(answer)
    answer_words = content_words(answer_norm)
    found = sum(_fact_found(f, answer_norm, answer_words, min_word_share) for f in facts)
    return found / len(facts)


def facts_found(answer: str, facts: Sequence[str], min_word_share: float = 0.75) -> list[bool]:
    """For each fact, whether ``answer`` holds it (the test :func:`fact_coverage` counts)."""
    if isinstance(facts, str):
        raise ValueError("facts must be a sequence of strings, not one string")
    answer_norm = _normalize(answer)
    answer_words = content_words(answer_norm)
    return [_fact_found(f, answer_norm, answer_words, min_word_share) for f in facts]


def normalize_plain(text: str) -> str:
    """Casefolded, accents and apostrophes folded, soft hyphens dropped, whitespace collapsed."""
    return " ".join(fold(text.replace("\u00ad", "")).split())


def evidence_found(passages: Sequence[str], facts: Sequence[str]) -> list[bool]:
    """For each fact, whether it occurs verbatim (after :func:`normalize_plain`) in one passage.

    Stricter than :func:`fact_coverage` on purpose: it asks whether the retrieved text holds
    the words a correct answer needs, so the loss between retrieval and answer is visible.
    """
    if isinstance(facts, str) or isinstance(passages, str):
        raise ValueError("passages and facts must be sequences of strings, not one string")
    texts = [normalize_plain(p) for p in passages]
    return [any(normalize_plain(f) in t for t in texts) for f in facts]


def evidence_recall(passages: Sequence[str], facts: Sequence[str]) -> float:
    """Share of ``facts`` present in ``passages`` (see :func:`evidence_found`); no facts -> 1.0."""
    found = evidence_found(passages, facts)
    return sum(found) / len(found) if found else 1.0


def word_count(text: str) -> int:
    """Words of an answer, citation markers such as "[1]" not counted."""
    return len(re.findall(r"\w+(?:['’-]\w+)*", MARKER.sub(" ", text)))


def median(values: Sequence[float]) -> float:
    """The median (the 50th percentile); [] -> 0.0."""
    return percentile(values, 50)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) with linear interpolation, as numpy's default; [] -> 0.0."""
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"p must be in [0, 100], got {p!r}")
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * p / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def unsupported_facts(answer_text: str, cited: Sequence[str]) -> list[str]:
    """The numbers, dates and proper names (``attribution.key_facts``) of each cited unit of
    ``answer_text`` that its passage, ``cited[n - 1]`` (title and text), does not hold: what a
    model's delivered answer must never have. Read from the delivered text, after every check,
    renumbering and lead-in rule, so it also catches a unit cited to the wrong passage. Lines
    without a marker (a framing line our code writes) are not checked."""
    out: list[str] = []
    for line in answer_text.splitlines():
        for unit, n in quoted_units(line):
            passage = cited[n - 1] if 1 <= n <= len(cited) else ""
            out += missing_facts(unit, passage)
    return out
