"""Answerers turn a retrieval into a cited answer. The default one is extractive: it quotes the
most relevant sentences of the top passages verbatim, each followed by its [n] marker, and declines
when the evidence is weak. An LLM answerer can implement the same ``Answerer`` protocol."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.answering.abstention import (
    Verdict,
    counted_noun,
    counts,
    expected_kind,
    judge,
    missing_entities,
    satisfies,
    unknown_share,
)
from assistant.retrieval.hybrid import Retrieval, Scored
from assistant.text.french import content_words
from assistant.types import Answer, Hit

log = logging.getLogger(__name__)

DECLINE = "Je n'ai pas trouvé de réponse fiable dans le corpus."

_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-•–*])\s+")
# A sentence ends after . ! ? … (maybe closing a quote), or after a bare » when a capital
# follows (« ... » (Comité 21 ...) goes on: that parenthesis belongs to the sentence).
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?…])|(?<=[.!?…]»))\s+(?=[«\"(A-ZÀ-ÖØ-Ý0-9])|(?<=»)\s+(?=[A-ZÀ-ÖØ-Ý])"
)


class Answerer(Protocol):
    """Anything that answers from a retrieval, citing its hits. ``stream`` yields text deltas
    (a draft) then exactly one final ``Answer``; an answerer that does not stream yields only
    the ``Answer`` (as simonw/llm's ``Model.execute`` yields once)."""

    def answer(self, question: str, retrieval: Retrieval) -> Answer: ...

    def stream(
        self,
        question: str,
        retrieval: Retrieval,
        history: Sequence[Mapping[str, str]] | None = None,
    ) -> Iterator[str | Answer]: ...


@dataclass(frozen=True)
class Unit:
    """A sentence or list item of a retrieved passage."""

    text: str
    hit_index: int  # index into retrieval.results
    position: int  # order within its passage
    is_list_item: bool


def split_units(text: str) -> list[tuple[str, bool]]:
    """Sentences and list items of a passage, in order, with a flag for list items. Numbered
    section titles are left out: they read like list items but answer nothing."""
    units: list[tuple[str, bool]] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        raw: list[tuple[str, bool]] = []
        prose: list[str] = []
        item: str | None = None  # the list item being read (PDF lines wrap inside items)
        for line in lines:
            if _wraps_on(prose, item, line):  # « …du Fonds ODD » / « 17. Elles montrent… »
                prose.append(line)
            elif _LIST_ITEM.match(line):
                if prose:
                    raw.extend((s, False) for s in _sentences(" ".join(prose)))
                    prose = []
                if item is not None:
                    raw.append((item, True))
                item = line
            elif item is not None and (
                line[:1].islower() or (len(item) > 70 and not _ends_sentence(item))
            ):  # a wrapped line of the item (a short unpunctuated "item" is a heading)
                item = f"{item} {line}"
            elif prose and _is_heading(prose[-1]) and line[:1].isupper():
                # a heading line: never quoted (it answers nothing), unless it may be the
                # wrapped end of the sentence before
                if len(prose) > 1 and not _ends_sentence(prose[-2]):
                    raw.extend((s, False) for s in _sentences(" ".join(prose)))
                else:
                    raw.extend((s, False) for s in _sentences(" ".join(prose[:-1])))
                prose = [line]
            else:
                if item is not None:
                    raw.append((item, True))
                    item = None
                prose.append(line)
        if item is not None:
            raw.append((item, True))
        if prose:
            raw.extend((s, False) for s in _sentences(" ".join(prose)))
        units.extend(_without_section_titles(raw))
    return units


_ITEM_NUMBER = re.compile(r"^(\d{1,2})[.)]\s")


def _wraps_on(prose: list[str], item: str | None, line: str) -> bool:
    """Whether ``line``, which looks like a numbered item (« 17. Elles montrent… »), is the
    wrapped end of the unfinished sentence before it (« …soutenus par le Fonds ODD »): a list
    starts at 1 or follows an item, and a sentence cut mid-way is not an intro."""
    m = _ITEM_NUMBER.match(line)
    return (
        m is not None
        and item is None
        and bool(prose)
        and int(m.group(1)) != 1
        and not _ends_sentence(prose[-1])
        and (len(prose) > 1 or len(prose[-1]) >= 60)  # a paragraph, not a lone heading
    )


def _without_section_titles(raw: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Drop numbered "items" that are section titles: short, no closing punctuation, and
    part of no numbered sequence (« 3. La « prime à l'alliance » » above « 3.1 … »). The
    last step of an unpunctuated list follows the one before, so it stays."""
    numbers = [
        int(m.group(1)) if is_item and (m := _ITEM_NUMBER.match(t)) else None for t, is_item in raw
    ]
    out: list[tuple[str, bool]] = []
    for i, (text, is_item) in enumerate(raw):
        n = numbers[i]
        if (
            n is not None
            and len(text.split()) <= 14
            and not text.rstrip().endswith((".", ";", "!", "…", ":", ","))
            and (i == 0 or numbers[i - 1] != n - 1)
            and (i + 1 == len(raw) or numbers[i + 1] != n + 1)
        ):
            continue
        out.append((text, is_item))
    return out


def _ends_sentence(text: str) -> bool:
    return text.rstrip().endswith((".", "!", "?", "…", ";", "»", ")", ":"))


_JOINERS = frozenset({
    "le", "la", "les", "l", "de", "du", "des", "d", "un", "une", "et", "ou", "à", "au", "aux",
    "en", "par", "pour", "sur", "dans", "avec", "que", "qui", "sans", "entre", "selon", "chez",
    "vers", "son", "sa", "ses", "leur", "leurs", "ce", "cette", "ces", "the", "of", "and",
})  # fmt: skip


def _is_heading(line: str) -> bool:
    """A short line without closing punctuation (a title or heading) ends its own unit; a line
    ending on « le », « de », « selon »... is a wrapped sentence (two-column PDFs), not one."""
    text = line.rstrip()
    if len(text) >= 90 or text.endswith((".", "!", "?", ":", ";", ",", "…")):
        return False
    if text.endswith(("»", ")", '"')) and re.search(r"[.!?…]\s*[»)\"]$", text):
        return False  # a sentence closing on a quote or a parenthesis
    last = text.rsplit(maxsplit=1)[-1].lower().rstrip("'’") if text else ""
    return last not in _JOINERS


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _is_useful(text: str) -> bool:
    """A whole sentence that says something: long enough, starting like a sentence (not the
    tail of one cut by a chunk boundary), ending like one (headings and table rows do not),
    and not a question (a FAQ heading is not an answer)."""
    words = text.split()
    stripped = text.strip()
    return (
        len(words) >= 5
        and len(stripped) >= 25
        and (stripped[0].isupper() or stripped[0].isdigit() or stripped[0] in '«"(')
        and _ends_sentence(stripped)
        and not stripped.endswith("?")
        and not _is_numbered_title(stripped)
    )


_SECTION_NUMBER = re.compile(r"^\d{1,2}(?:\.\d{1,2})+\.?\s")


def _is_numbered_title(text: str) -> bool:
    """« 3.5 Janvier 2023 : la première étude d'impact du « faire alliance » »: a numbered
    section title that closes on a quote or a parenthesis, not on a full stop."""
    return bool(_SECTION_NUMBER.match(text)) and not re.search(r"[.!…;][»)\"]?$", text)


def lexical_overlap(question: str, text: str) -> float:
    q = content_words(question)
    if not q:
        return 0.0
    return len(q & content_words(text)) / len(q)


def gives_value(question: str, text: str, kind: str | None, noun: str | None) -> bool:
    """Whether a sentence gives the kind of value the question asks for, about its subject:
    the value is there (an amount, a count of the noun...) and the sentence shares a content
    word with the question, so a figure about another subject does not count."""
    if kind is None:
        return True
    if not satisfies(kind, text) or (noun is not None and not counts(noun, text)):
        return False
    return noun is not None or lexical_overlap(question, text) > 0


def format_citation(n: int, hit: Hit) -> str:
    """``[n] Titre — p. 4 (recit)`` for a sources list."""
    page = f", p. {hit.page}" if hit.page else ""
    return f"[{n}] {hit.title or hit.source}{page} ({hit.kind}) — {hit.source}"


def compose(units: Sequence[tuple[str, int]]) -> str:
    """Join (text, citation number) pairs: each unit ends with its [n] marker; list items keep
    their own lines."""
    parts: list[str] = []
    for text, n in units:
        body = text.rstrip()
        if _LIST_ITEM.match(body):
            parts.append(f"\n{body} [{n}]")
        else:
            parts.append(f"{body} [{n}]")
    out = " ".join(parts).replace(" \n", "\n")
    return out.strip()


class ExtractiveAnswerer:
    """Quotes 2-5 sentences (or a list of steps) from the top passages, faithfully, with [n]."""

    def __init__(
        self,
        embedder: Embeddings,
        threshold: float,
        max_sentences: int = 4,
        threshold_en: float | None = None,
        passages: int = 5,
        cache_size: int = 20000,
        max_embedded: int = 16,
    ) -> None:
        self.embedder = embedder
        self.threshold = threshold
        # English questions match French passages less closely: a lower similarity floor.
        self.threshold_en = threshold - 0.03 if threshold_en is None else threshold_en
        self.max_sentences = max_sentences
        self.passages = passages
        self.max_embedded = max_embedded
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def answer(self, question: str, retrieval: Retrieval) -> Answer:
        return self.answer_with_verdict(question, retrieval)[0]

    def stream(
        self,
        question: str,
        retrieval: Retrieval,
        history: Sequence[Mapping[str, str]] | None = None,
    ) -> Iterator[str | Answer]:
        """The answer, once (extracts are not drafted)."""
        yield self.answer(question, retrieval)

    def answer_with_verdict(self, question: str, retrieval: Retrieval) -> tuple[Answer, Verdict]:
        """The answer and why it was given or declined (see ``assistant.answering.abstention``)."""
        results = retrieval.results[: self.passages]
        if not results:
            verdict = Verdict(False, "aucun passage")
            return self.decline(retrieval, verdict), verdict
        similarity = retrieval.evidence_strength(min(3, self.passages))
        df = retrieval.document_frequency
        share, unknown = unknown_share(question, df) if df is not None else (0.0, [])
        kind = expected_kind(question)
        noun = counted_noun(question)
        units = self._units(results)
        chosen: list[int] = []
        if units:
            scores = self._score(question, retrieval.query_vector, units, results)
            if kind is not None:  # prefer sentences that hold the kind of value asked for
                scores = scores + 0.08 * np.array([satisfies(kind, u.text) for u in units])
            if noun is not None:  # the sentence that gives the count must be quoted
                scores = scores + 0.15 * np.array([counts(noun, u.text) for u in units])
            chosen = self._choose(units, scores)
            chosen = self._ensure_value(question, units, scores, chosen, kind, noun)
            chosen = self._with_lists(units, _with_antecedents(units, chosen))
        value_found = kind is None or any(
            gives_value(question, units[i].text, kind, noun) for i in chosen
        )
        evidence = [f"{r.chunk.metadata.get('title', '')} {r.chunk.text}" for r in results[:3]]
        verdict = judge(
            question,
            similarity,
            self.threshold,
            self.threshold_en,
            unknown,
            share,
            kind,
            value_found,
            missing_entities(question, evidence),
        )
        if not chosen or not verdict.answer:
            return self.decline(retrieval, verdict), verdict
        return self._build(retrieval, units, chosen), verdict

    # -- steps ---------------------------------------------------------------------------
    def _units(self, results: Sequence[Scored]) -> list[Unit]:
        units: list[Unit] = []
        for i, r in enumerate(results):
            for pos, (text, is_item) in enumerate(split_units(r.chunk.text)):
                if _is_useful(text) or (
                    is_item and len(text.split()) >= 2 and not text.rstrip().endswith("?")
                ):
                    units.append(Unit(text, i, pos, is_item))
        return units

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit-norm document embeddings of ``texts``, one row each (cached)."""
        return self._embed(texts)

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vecs = np.asarray(self.embedder.embed_documents(missing), dtype=np.float32)
            for t, v in zip(missing, vecs, strict=True):
                n = float(np.linalg.norm(v)) or 1.0
                self._cache[t] = v / n
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        for t in texts:
            self._cache.move_to_end(t)
        return np.stack([self._cache[t] for t in texts])

    def _score(
        self, question: str, qvec: Sequence[float], units: list[Unit], results: Sequence[Scored]
    ) -> np.ndarray:
        q = np.asarray(qvec, dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        lex = np.array([lexical_overlap(question, u.text) for u in units], dtype=np.float32)
        prior = np.array([0.02 * (len(results) - u.hit_index) for u in units], dtype=np.float32)
        cheap = 0.3 * lex + prior
        # Embedding sentences is most of an answer's cost: embed only the most promising ones
        # by the cheap signals; the others rank below every embedded one.
        keep = [int(i) for i in np.argsort(-cheap, kind="stable")[: self.max_embedded]]
        sims = np.full(len(units), -1.0, dtype=np.float32)
        sims[keep] = self._embed([units[i].text for i in keep]) @ q
        return np.asarray(sims + cheap)

    def _choose(self, units: list[Unit], scores: np.ndarray) -> list[int]:
        order = [int(i) for i in np.argsort(-scores)]
        best = order[0]
        chosen: list[int] = []
        if units[best].is_list_item:
            # keep the whole list the best item belongs to (up to 8 items), in order
            same = [
                i
                for i, u in enumerate(units)
                if u.hit_index == units[best].hit_index and u.is_list_item
            ]
            block = _contiguous(same, units, best)
            chosen = block[:8]
        elif self._list_after(units, best):
            # « ... en cinq étapes : » followed by the steps: quote the intro and the list
            chosen = [best, *self._list_after(units, best)[:8]]
        else:
            floor = float(scores[best]) - 0.08
            for i in order:
                if len(chosen) >= self.max_sentences:
                    break
                if float(scores[i]) < floor and len(chosen) >= 2:
                    break
                if any(_similar(units[i].text, units[j].text) for j in chosen):
                    continue
                chosen.append(i)
        return _in_passage_order(units, chosen)

    def _ensure_value(
        self,
        question: str,
        units: list[Unit],
        scores: np.ndarray,
        chosen: list[int],
        kind: str | None,
        noun: str | None,
    ) -> list[int]:
        """When the question asks for a value (« combien de projets ») and no chosen sentence
        gives it, quote the best-scoring sentence that does, in place of the weakest one."""
        if kind is None:
            return chosen

        def ok(i: int) -> bool:
            return gives_value(question, units[i].text, kind, noun)

        if any(ok(i) for i in chosen):
            return chosen
        candidates = [i for i in range(len(units)) if ok(i)]
        if not candidates:
            return chosen
        best = max(candidates, key=lambda i: float(scores[i]))
        kept = sorted(chosen, key=lambda i: float(scores[i]), reverse=True)
        if len(kept) >= self.max_sentences:
            kept = kept[: self.max_sentences - 1]
        kept.append(best)
        return _in_passage_order(units, kept)

    def _with_lists(self, units: list[Unit], chosen: list[int]) -> list[int]:
        """A chosen sentence that announces a list (« … : ») is quoted with its items: the
        intro alone answers nothing."""
        out = set(chosen)
        for i in chosen:
            if not units[i].is_list_item and units[i].text.rstrip().endswith(":"):
                out.update(self._list_after(units, i)[:8])
        return _in_passage_order(units, out)

    @staticmethod
    def _list_after(units: list[Unit], i: int) -> list[int]:
        """The list items that directly follow unit ``i`` in its passage (none if prose)."""
        out: list[int] = []
        position = units[i].position + 1
        by_place = {(u.hit_index, u.position): j for j, u in enumerate(units)}
        while (j := by_place.get((units[i].hit_index, position))) is not None:
            if not units[j].is_list_item:
                break
            out.append(j)
            position += 1
        return out if len(out) >= 2 else []

    def _build(self, retrieval: Retrieval, units: list[Unit], chosen: list[int]) -> Answer:
        numbers: dict[int, int] = {}
        citations: list[Hit] = []
        pairs: list[tuple[str, int]] = []
        for i in chosen:
            h = units[i].hit_index
            if h not in numbers:
                numbers[h] = len(citations) + 1
                citations.append(retrieval.results[h].to_hit())
            pairs.append((units[i].text, numbers[h]))
        return Answer(
            text=compose(pairs), citations=citations, grounded=True, query=retrieval.query
        )

    def decline(self, retrieval: Retrieval, verdict: Verdict | None = None) -> Answer:
        """No reliable answer: say so and suggest the nearest documents (one hit per document)."""
        log.debug("declining: %s", verdict.reason if verdict else "")
        suggestions: list[Hit] = []
        seen: set[str] = set()
        for r in retrieval.results:
            hit = r.to_hit()
            if hit.source in seen:
                continue
            seen.add(hit.source)
            suggestions.append(hit)
            if len(suggestions) == 3:
                break
        text = DECLINE
        if suggestions:
            names = "; ".join(
                f"{h.title or h.source}" + (f" (p. {h.page})" if h.page else "")
                for h in suggestions
            )
            text += f" Documents les plus proches : {names}."
        return Answer(text=text, citations=suggestions, grounded=False, query=retrieval.query)


# A sentence opening on a pronoun (« Elle n'a donc jamais été adoptée ») needs the one before.
_ANAPHORIC = re.compile(
    r"^(?:Il|Elle|Ils|Elles|Celui-ci|Celle-ci|Ceux-ci|Celles-ci|Ce dernier|Cette dernière"
    r"|Cela|Ceci)\b"
)


def _with_antecedents(units: list[Unit], chosen: list[int]) -> list[int]:
    """Add, before a chosen sentence that opens on a pronoun, the sentence just before it in
    the same passage (when it is quotable and not chosen yet), so the answer says who « elle »
    is. Kept in passage order."""
    out = set(chosen)
    for i in chosen:
        unit = units[i]
        if unit.is_list_item or not _ANAPHORIC.match(unit.text):
            continue
        before = [
            j
            for j, u in enumerate(units)
            if u.hit_index == unit.hit_index and u.position == unit.position - 1
        ]
        if before and not units[before[0]].is_list_item:
            out.add(before[0])
    return _in_passage_order(units, out)


def _in_passage_order(units: list[Unit], indices: Iterable[int]) -> list[int]:
    """Unit indices sorted as the answer quotes them: by passage, then by place in it."""
    return sorted(indices, key=lambda j: (units[j].hit_index, units[j].position))


def _contiguous(indices: list[int], units: list[Unit], center: int) -> list[int]:
    """The run of consecutive positions around ``center`` among ``indices``."""
    pos = {units[i].position: i for i in indices}
    p = units[center].position
    start = p
    while start - 1 in pos:
        start -= 1
    out = []
    q = start
    while q in pos:
        out.append(pos[q])
        q += 1
    return out


def _similar(a: str, b: str) -> bool:
    """Whether sentence ``a`` adds next to nothing to ``b``: most of its content words (stems,
    accents folded) are in ``b`` — the same fact told by two documents, or twice in one."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return False
    return len(wa & wb) / len(wa) > 0.8
