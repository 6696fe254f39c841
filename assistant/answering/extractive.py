"""Answerers turn a retrieval into a cited answer. The default one is extractive: it quotes the
most relevant sentences of the top passages verbatim, each followed by its [n] marker, and declines
when the evidence is weak. An LLM answerer can implement the same ``Answerer`` protocol."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.answering.abstention import (
    Verdict,
    counted_noun,
    counts,
    expected_kind,
    is_english,
    judge,
    missing_entities,
    question_type,
    satisfies,
    unknown_share,
)
from assistant.answering.citations import compose
from assistant.indexing.store import StoredChunk
from assistant.retrieval.followup import asked_part
from assistant.retrieval.hybrid import Retrieval, Scored
from assistant.text import french, sentences, structure
from assistant.text.french import FRENCH_NUMBERS, content_words, fold
from assistant.text.ligatures import french_words
from assistant.text.sentences import split_sentences
from assistant.text.structure import LIST_ITEM, NUMBERED_ITEM, STEP_HEADING, TABLE_ROW
from assistant.types import Answer, Hit

log = logging.getLogger(__name__)

DECLINE = "Je n'ai pas trouvé de réponse fiable dans le corpus."


def _is_french_word(word: str) -> bool:
    """Whether French has ``word`` (pyspellchecker's list, read once): what an English
    question could share with a French corpus (see ``abstention.unknown_share``)."""
    return word in french_words()


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
    position: int  # order within its passage (or within the section read around it)
    is_list_item: bool
    chunk: StoredChunk | None = None  # the chunk it was read from (None: the hit's own)
    in_hit: bool = True  # read from the retrieved chunk itself, not from its section


def split_units(text: str) -> list[tuple[str, bool]]:
    """Sentences and list items of a passage, in order, with a flag for list items. Numbered
    section titles are left out: they read like list items but answer nothing."""
    units: list[tuple[str, bool]] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        raw: list[tuple[str, bool]] = []
        prose: list[str] = []
        item: str | None = None  # the list item being read (PDF lines wrap inside items)
        header: list[str] | None = None  # the header row of the table being read
        for line in lines:
            if TABLE_ROW.match(line):  # a table row is an item, its header the first row
                if prose:
                    raw.extend((s, False) for s in _sentences(" ".join(prose)))
                    prose = []
                if item is not None:
                    raw.append((item, True))
                    item = None
                cells = [c.strip() for c in line.strip()[1:-1].split(" | ")]
                if header is None and len(cells) > 1 and not any(cells[1:]):
                    continue  # a caption spanning the table (« | Les quatre métiers |  | »)
                if header is None:
                    header = cells
                elif row := table_row(header, cells):
                    raw.append((row, True))
                continue
            header = None
            if _wraps_on(prose, item, line):  # « …du Fonds ODD » / « 17. Elles montrent… »
                prose.append(line)
            elif LIST_ITEM.match(line):
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


def table_row(header: Sequence[str], cells: Sequence[str]) -> str:
    """A table row as a list item that can be read alone: its first cell, then each other
    cell after its column's title (« - 1. Diagnostic — Qui pilote : le binôme ; Livrable : une
    note »)."""
    if not cells or not any(c.strip() for c in cells):
        return ""
    first, rest = cells[0].strip(), []
    for title, cell in zip(header[1:], cells[1:], strict=False):
        if cell.strip():
            rest.append(f"{title.strip()} : {cell.strip()}" if title.strip() else cell.strip())
    body = " ; ".join(rest)
    if not first:
        return f"- {body}"
    return f"- {first} — {body}" if body else f"- {first}"


def _wraps_on(prose: list[str], item: str | None, line: str) -> bool:
    """Whether ``line``, which looks like a numbered item (« 17. Elles montrent… »), is the
    wrapped end of the unfinished sentence before it (« …soutenus par le Fonds ODD »): a list
    starts at 1 or follows an item, and a sentence cut mid-way is not an intro."""
    m = NUMBERED_ITEM.match(line)
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
        int(m.group(1)) if is_item and (m := NUMBERED_ITEM.match(t)) else None for t, is_item in raw
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
    return split_sentences(text)


def sentence_units(text: str) -> list[str]:
    """The sentences and list items of a chunk the answerer may quote, hence embed: what a
    refresh embeds ahead of questions (``answering.sentence_cache.ChunkSentences``), so that
    composing an answer costs no model call. The same texts, character for character, as the
    units an answer scores (section headings, which answers skip, may be among them)."""
    return [t for t, is_item in split_units(text) if _is_unit(t, is_item)]


def _is_unit(text: str, is_item: bool) -> bool:
    """A quotable unit: a useful sentence, or a list item of two words or more that is not a
    question."""
    return (
        _is_useful(text)
        or (is_item and len(text.split()) >= 2 and not text.rstrip().endswith("?"))
        or _is_lead_in(text, is_item)
    )


def _is_lead_in(text: str, is_item: bool) -> bool:
    """A short sentence announcing a list (« Elle retient 6 enjeux : »): quoted with its
    list only (``_without_dangling`` drops it otherwise), so it may be short."""
    t = text.strip()
    return not is_item and len(t.split()) >= 3 and t[:1].isupper() and t.endswith(":")


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
        and not _POINTER.match(stripped)
    )


# « Voir Évaluer un partenariat et son impact. », « Cf. annexe 2. », « Le détail figure dans le
# document … »: a pointer to another text, not an answer.
_POINTER = re.compile(
    r"^(?:Voir|Cf\.|Pour en savoir plus|Lire aussi|See)\b"
    r"|^.{0,60}\b(?:figure|figurent|se trouve|se trouvent|"
    r"(?:est|sont) (?:présenté|détaillé|décrit)e?s?)"
    r" dans (?:le|la|les|ce|cette|l'|un|une) ?(?:document|guide|fiche|note|chapitre|section|"
    r"annexe|partie|page|rapport)",
    re.IGNORECASE,
)


_SECTION_NUMBER = re.compile(r"^\d{1,2}(?:\.\d{1,2})+\.?\s")


def _is_numbered_title(text: str) -> bool:
    """« 3.5 Janvier 2023 : la première étude d'impact du « faire alliance » »: a numbered
    section title that closes on a quote or a parenthesis, not on a full stop."""
    return bool(_SECTION_NUMBER.match(text)) and not re.search(r"[.!…;][»)\"]?$", text)


def lexical_overlap(
    question: str, text: str, document_frequency: Callable[[str], int] | None = None
) -> float:
    """Share of the question's content words (stems) that ``text`` holds. With the corpus's
    document frequencies, each word weighs by its rarity: the sentence holding the words that
    set the question apart (« presse », « personnalités ») outranks one holding its common words
    (« loi », « proposition »)."""
    return weighted_overlap(word_weights(question, document_frequency), text)


def word_weights(
    question: str, document_frequency: Callable[[str], int] | None = None
) -> dict[str, float]:
    """The question's content words, each with its weight in ``weighted_overlap``: 1, or
    1 / log(2 + df) with the corpus's document frequencies. Computed once per question."""
    q = content_words(question)
    if document_frequency is None:
        return dict.fromkeys(q, 1.0)
    return {w: 1.0 / math.log(2.0 + document_frequency(w)) for w in q}


def weighted_overlap(weights: Mapping[str, float], text: str) -> float:
    """The weighted share of the question's words (``word_weights``) that ``text`` holds."""
    return weighted_share(weights, content_words(text) if weights else frozenset())


def weighted_share(weights: Mapping[str, float], words: Set[str]) -> float:
    """``weighted_overlap`` for a text whose ``content_words`` are ``words`` (computed once)."""
    if not weights:
        return 0.0
    shared = weights.keys() & words
    return sum(weights[w] for w in shared) / sum(weights.values())


def gives_value(
    question: str,
    text: str,
    kind: str | None,
    noun: str | None,
    readings: Readings | None = None,
    parts: Sequence[str] = (),
) -> bool:
    """Whether a sentence gives the kind of value the question asks for, about its subject:
    the value is there (an amount, a count of the noun...) and the sentence shares a content
    word with the question, so a figure about another subject does not count. ``readings``:
    the answerer's memo of what does not depend on the question. ``parts``: the sentences
    ``text`` joins with spaces, if it does: its content words are theirs, read from the memo
    instead of tokenizing the joined text."""
    if kind is None:
        return True
    holds = readings.satisfies if readings is not None else satisfies
    counted = readings.counts if readings is not None else counts
    words = readings.words if readings is not None else content_words
    value = _without_asked_numbers(question, text)
    if not holds(kind, value) or (noun is not None and not counted(noun, text)):
        return False
    if noun is not None:
        return True
    asked = words(question)
    return any(asked & words(p) for p in parts) if parts else bool(asked & words(text))


_NUMBER = re.compile(r"\d+(?:[,.]\d+)?")


def _without_asked_numbers(question: str, text: str) -> str:
    """``text`` without the numbers the question itself states: in « Le fonds ODD 17 était doté
    de combien ? » the 17 names the fund, it is not the value asked for."""
    asked = set(_NUMBER.findall(question))
    if not asked:
        return text
    return _NUMBER.sub(lambda m: "" if m.group(0) in asked else m.group(0), text)


class _Read(NamedTuple):
    """A sentence or list item of a chunk as every question reads it: whether it may be
    quoted (``_is_unit``) and its folded form (compared with the section's headings). A
    tuple: some 60 are built per question from what the refresh stored."""

    text: str
    is_item: bool
    quotable: bool
    folded: str


def _read_chunk(text: str) -> tuple[_Read, ...]:
    return tuple(
        _Read(t, is_item, _is_unit(t, is_item), fold(t).strip()) for t, is_item in split_units(text)
    )


def _frozen_words(text: str) -> frozenset[str]:
    return frozenset(content_words(text))


def chunk_reading(
    text: str, words_of: Callable[[str], Set[str]] = _frozen_words
) -> list[list[Any]]:
    """What ``Readings`` reads of a chunk, as a refresh stores it (JSON): each unit's text,
    whether it is a list item, whether it may be quoted, its folded form and, for a quotable
    one, its content words (space-separated; ``words_of``: ``content_words``, or a memo of it
    a refresh shares with ``SentenceCache.keep_words``)."""
    rows: list[list[Any]] = []
    for r in _read_chunk(text):
        words = " ".join(sorted(words_of(r.text))) if r.quotable else None
        rows.append([r.text, r.is_item, r.quotable, r.folded, words])
    return rows


def reader_version() -> str:
    """A digest of the code that reads a chunk (this module and the text helpers it reads
    with): readings a refresh stored serve only the code that wrote them, so an edited rule
    is never answered with an old reading."""
    digest = hashlib.blake2b(digest_size=8)
    for module in (sys.modules[__name__], structure, sentences, french):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


class _Lru:
    """A bounded map, least recently used first out; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def absent(self, keys: Iterable[str]) -> list[str]:
        with self._lock:
            return [k for k in dict.fromkeys(keys) if k not in self._items]

    def put(self, items: Mapping[str, Any]) -> None:
        with self._lock:
            for key, value in items.items():
                self._items[key] = value
                self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


StoredReadings = Callable[[Sequence[str]], Mapping[str, list[list[Any]]]]
StoredWords = Callable[[Sequence[str]], Mapping[str, frozenset[str]]]


class Readings:
    """What the answerer reads of a text whatever the question, computed once per text: a
    chunk's units, a sentence's content words, whether it speaks of its own document. Keyed
    by the text itself, so a chunk rewritten by a refresh (here or in another process) is a
    new key, never a stale entry; bounded (least recently used entries go). One per answerer:
    about 80 sentences are read per question, and the same sections come back across
    questions (tokenizing them was half of composing an answer). What a refresh stored
    (``chunk_reading`` per chunk, words per sentence: ``SentenceCache``) is read first, so a
    fresh process does not parse or tokenize either."""

    def __init__(
        self,
        chunks: int = 4096,
        texts: int = 65536,
        stored: StoredWords | None = None,
        stored_chunks: StoredReadings | None = None,
    ) -> None:
        """``stored``: the content words a refresh kept for sentences (those it has);
        ``stored_chunks``: the chunk readings it kept (``SentenceCache.readings``)."""
        self._units = _Lru(chunks)
        self._words = _Lru(texts)
        self._stored = stored
        self._stored_chunks = stored_chunks
        self.about_document = functools.lru_cache(maxsize=texts)(_about_document)
        self.satisfies = functools.lru_cache(maxsize=texts)(satisfies)
        self.counts = functools.lru_cache(maxsize=texts)(counts)
        self._section_path = functools.lru_cache(maxsize=chunks)(_section_path)

    def units(self, text: str) -> tuple[_Read, ...]:
        """The units of a chunk (``split_units``, with what ``_units`` asks of each)."""
        found: tuple[_Read, ...] | None = self._units.get(text)
        if found is None:
            found = _read_chunk(text)
            self._units.put({text: found})
        return found

    def prime(self, texts: Sequence[str]) -> None:
        """Take the chunks among ``texts`` never read from what the refresh stored (one read
        for all): their units and their sentences' words."""
        if self._stored_chunks is None:
            return
        new = self._units.absent(texts)
        if not new:
            return
        stored = self._stored_chunks(new)
        units: dict[str, tuple[_Read, ...]] = {}
        words: dict[str, frozenset[str]] = {}
        for text, rows in stored.items():
            units[text] = tuple(_Read(t, i, q, f) for t, i, q, f, _ in rows)
            words.update({str(t): frozenset(str(w).split()) for t, *_, w in rows if w is not None})
        self._units.put(units)
        self._words.put(words)

    def words(self, text: str) -> frozenset[str]:
        """``content_words`` of ``text``, tokenized once."""
        found: frozenset[str] | None = self._words.get(text)
        if found is None:
            found = _frozen_words(text)
            self._words.put({text: found})
        return found

    def words_of(self, texts: Sequence[str]) -> list[frozenset[str]]:
        """``words`` of each of ``texts``; those never read are first looked up in what the
        refresh stored (one read for all), then tokenized."""
        if self._stored is not None:
            new = self._words.absent(texts)
            if new:
                self._words.put(self._stored(new))
        return [self.words(t) for t in texts]

    def path(self, chunk: StoredChunk) -> tuple[str, ...]:
        """``_path`` of a chunk, its section heading path read once per path."""
        return self._section_path(str(chunk.metadata.get("section", "")))


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
        read_sections: int = 3,
        section_chunks: int = 8,
        max_list_items: int = 20,  # a whole list, up to a length one can read in a chat
        read_chars: int = 3000,
        stored_words: StoredWords | None = None,
        stored_chunks: StoredReadings | None = None,
    ) -> None:
        """``stored_words``, ``stored_chunks``: the sentences' content words and the chunks'
        readings a refresh kept (``SentenceCache.words``, ``SentenceCache.readings``), so that
        answering parses and tokenizes only what it never stored."""
        self.read_chars = read_chars
        self.read_sections = read_sections
        self.section_chunks = section_chunks
        self.max_list_items = max_list_items
        self.embedder = embedder
        self.threshold = threshold
        # English questions match French passages less closely: a lower similarity floor.
        self.threshold_en = threshold - 0.03 if threshold_en is None else threshold_en
        self.max_sentences = max_sentences
        self.passages = passages
        self.max_embedded = max_embedded
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.readings = Readings(stored=stored_words, stored_chunks=stored_chunks)

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
            return self.decline(retrieval, verdict, question), verdict
        similarity = retrieval.evidence_strength(min(3, self.passages))
        df = retrieval.document_frequency
        share, unknown = (
            unknown_share(question, df, _is_french_word) if df is not None else (0.0, [])
        )
        ask = asked_part(question)  # a rewritten follow-up: its new ask says what is wanted
        kind = expected_kind(ask)
        noun = counted_noun(ask)
        asked = question_type(ask)
        if asked == "list" and states_yes_no(ask):
            asked = "other"  # « Les conditions … ont-elles été reprises … ? » asks yes or no
        # a list question reads the section of every passage holding list items: a list cut by
        # a chunk boundary is quoted whole even from a lower-ranked passage
        units = self._units(results, retrieval, lists=asked == "list")
        chosen: list[int] = []
        if units:
            scores = self._score(
                question, retrieval.query_vector, units, results, df, lists=asked == "list"
            )
            scores = scores + np.array([_shape_bonus(asked, u) for u in units], dtype=np.float32)
            if asked == "definition" and (subject := defined_subject(ask)):
                scores = scores + np.array(
                    [
                        (SUBJECT_FIRST if _opens_on(subject, u, self.readings.words) else 0.0)
                        + (SUBJECT_FIRST if _defines_section(u) else 0.0)
                        for u in units
                    ],
                    dtype=np.float32,
                )
            if kind is not None:  # prefer sentences that hold the kind of value asked for
                scores = scores + 0.08 * np.array(
                    [
                        self.readings.satisfies(kind, _without_asked_numbers(question, u.text))
                        for u in units
                    ]
                )
            scores = scores + np.array(
                [_answers_asked_heading(question, u, self.readings.words) for u in units],
                dtype=np.float32,
            )
            if noun is not None:  # the sentence that gives the count must be quoted
                counted = self.readings.counts
                scores = scores + 0.15 * np.array([counted(noun, u.text) for u in units])
            if asked == "list" and (outline := self._outline(question, retrieval, results)):
                units, chosen = outline, list(range(len(outline)))
            else:
                chosen = self._whole_list(units, scores, question) if asked == "list" else []
            if not chosen:
                chosen = self._choose(units, scores)
                chosen = self._ensure_value(question, units, scores, chosen, kind, noun)
                chosen = self._with_asked_answer(ask, units, scores, chosen)
                if asked != "list" and (also := also_asked_items(ask)):
                    chosen = self._with_named_list(units, scores, chosen, also)
                if asked == "who":
                    chosen = self._with_neighbour(units, scores, chosen, _names_someone)
                    chosen = _with_announced_list(question, units, scores, chosen)
                elif asked == "other" and asks_yes_no(ask):
                    chosen = _with_next(units, scores, chosen)
            chosen = self._with_lists(units, _with_antecedents(units, chosen))
            chosen = _without_dangling(units, chosen)
        value_found = kind is None or any(
            gives_value(question, units[i].text, kind, noun, self.readings)
            or (
                i > 0
                and units[i - 1].hit_index == units[i].hit_index
                and units[i - 1].position == units[i].position - 1
                and (i - 1) in chosen
                and gives_value(
                    question,
                    f"{units[i - 1].text} {units[i].text}",
                    kind,
                    noun,
                    self.readings,
                    (units[i - 1].text, units[i].text),
                )
            )
            for i in chosen
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
            return self.decline(retrieval, verdict, question), verdict
        return self._build(retrieval, units, chosen, question), verdict

    # -- steps ---------------------------------------------------------------------------
    def _units(
        self, results: Sequence[Scored], retrieval: Retrieval | None = None, lists: bool = False
    ) -> list[Unit]:
        """Quotable units of the top passages. For the first ``read_sections`` passages the
        whole enclosing section is read (its other chunks, in order), so a list cut by a chunk
        boundary or the sentence after the retrieved one can be quoted: retrieve small, read
        big. Headings of the section path are never units."""
        units: list[Unit] = []
        section_of = retrieval.section_chunks if retrieval is not None else None
        read: set[str] = set()
        plan: list[tuple[int, Scored, list[StoredChunk]]] = []
        for i, r in enumerate(results):
            chunks = [r.chunk]
            if section_of is not None and (
                i < self.read_sections or (lists and _has_items(r.chunk.text))
            ):
                sid = str(r.chunk.metadata.get("section_id", ""))
                if sid and sid in read:
                    continue  # the section was read for a better passage
                if sid:
                    read.add(sid)
                    chunks = _around(section_of(r.chunk), r.chunk, self.section_chunks)
                    if retrieval is not None and retrieval.document_chunks is not None:
                        document = retrieval.document_chunks(r.chunk)
                        chunks = _with_subsections(
                            document, r.chunk, chunks, self.read_chars, self.readings.path
                        )
            plan.append((i, r, chunks))
        self.readings.prime([c.text for _, _, chunks in plan for c in chunks])
        for i, r, chunks in plan:
            headings = {
                fold(h).strip()
                for h in str(r.chunk.metadata.get("section", "")).split(" > ")
                if h.strip()
            }
            seen: set[str] = set()
            pos = 0
            for chunk in chunks:
                for part in self.readings.units(chunk.text):
                    if part.text in seen or part.folded in headings:
                        continue
                    seen.add(part.text)
                    if part.quotable:
                        own = chunk.id == r.chunk.id
                        units.append(Unit(part.text, i, pos, part.is_item, chunk, own))
                    pos += 1
        return units

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit-norm document embeddings of ``texts``, one row each (cached)."""
        return self._embed(texts)

    def _embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            # a ``SentenceCache`` gives its float32 arrays as they are (no list of floats)
            vectors = getattr(self.embedder, "vectors", None)
            found = vectors(missing) if callable(vectors) else None
            if found is None:
                found = self.embedder.embed_documents(missing)
            vecs = np.asarray(found, dtype=np.float32)
            for t, v in zip(missing, vecs, strict=True):
                n = float(np.linalg.norm(v)) or 1.0
                self._cache[t] = v / n
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        for t in texts:
            self._cache.move_to_end(t)
        return np.stack([self._cache[t] for t in texts])

    def _score(
        self,
        question: str,
        qvec: Sequence[float],
        units: list[Unit],
        results: Sequence[Scored],
        document_frequency: Callable[[str], int] | None = None,
        lists: bool = False,
    ) -> np.ndarray:
        q = np.asarray(qvec, dtype=np.float32)
        q = q / (float(np.linalg.norm(q)) or 1.0)
        ask = asked_part(question)
        weights = word_weights(question, document_frequency)
        words = self.readings.words_of([u.text for u in units])
        lex = np.array([weighted_share(weights, w) for w in words], dtype=np.float32)
        if ask != question:  # a follow-up: its own words count twice (« et à Charenton ? »)
            own = word_weights(ask, document_frequency)
            lex = (lex + np.array([weighted_share(own, w) for w in words])) / 2
        prior = np.array(
            [0.02 * (len(results) - u.hit_index) - (0 if u.in_hit else 0.03) for u in units],
            dtype=np.float32,
        )
        about_doc = np.array(
            [self.readings.about_document(u.text) for u in units], dtype=np.float32
        )
        cheap = 0.3 * lex + prior - 0.3 * about_doc
        # Embedding sentences is most of an answer's cost: embed only the most promising ones
        # by the cheap signals; the others rank below every embedded one.
        # A list question weighs whole lists, whose items are many and short: more are embedded
        # (most come from the refresh's sentence cache at no cost).
        most = self.max_embedded * (LIST_EMBEDDED if lists else 1)
        keep = [int(i) for i in np.argsort(-cheap, kind="stable")[:most]]
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
            # with the sentence that announces it (« Elle retient 6 enjeux : »)
            first = units[block[0]]
            lead = next(
                (
                    j
                    for j, u in enumerate(units)
                    if u.hit_index == first.hit_index and u.position == first.position - 1
                ),
                None,
            )
            lead_in = lead is not None and not units[lead].is_list_item
            if lead is not None and lead_in and units[lead].text.rstrip().endswith(":"):
                chosen = [lead, *chosen]
        elif self._list_after(units, best):
            # « ... en cinq étapes : » followed by the steps: quote the intro and the list
            chosen = [best, *self._list_after(units, best)[:8]]
        else:
            chosen = self._coherent(units, scores, order)
        return _in_passage_order(units, chosen)

    def _coherent(self, units: list[Unit], scores: np.ndarray, order: list[int]) -> list[int]:
        """The best sentence, then the next best ones, preferring those next to a sentence
        already chosen in the same passage: the sentence after the one that matched often holds
        the answer (« La Charte n'édicte pas de règles. Elle est non contraignante… »), and a
        passage read in order answers better than fragments of several documents."""
        best = order[0]
        score = scores.tolist()  # floats, not numpy scalars: ~300 reads per answer
        floor = score[best] - 0.08
        chosen = [best]
        pool = list(order[1:])
        while pool and len(chosen) < self.max_sentences:
            places = {(units[j].hit_index, units[j].position) for j in chosen}

            def gain(i: int, places: set[tuple[int, int]] = places) -> float:
                u = units[i]
                before, after = (u.hit_index, u.position - 1), (u.hit_index, u.position + 1)
                near = before in places or after in places
                return float(score[i]) + (NEXT_TO_CHOSEN if near else 0.0)

            i = max(pool, key=gain)
            pool.remove(i)
            if gain(i) < floor and len(chosen) >= 2:
                break
            if any(_similar(units[i].text, units[j].text, self.readings) for j in chosen):
                continue
            chosen.append(i)
        return chosen

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

        @functools.cache
        def ok(i: int) -> bool:  # asked up to three times per unit below
            return gives_value(question, units[i].text, kind, noun, self.readings)

        if any(ok(i) for i in chosen):
            return chosen
        by_place = {(u.hit_index, u.position): j for j, u in enumerate(units)}

        def told_before(i: int) -> int | None:
            """The sentence just before ``i`` when it names the subject and ``i`` holds the
            value (« Le Fonds X est l'outil du plan. Sa dotation atteint 2 M€. »)."""
            j = by_place.get((units[i].hit_index, units[i].position - 1))
            if j is None or units[j].is_list_item or units[i].is_list_item:
                return None
            joined = f"{units[j].text} {units[i].text}"
            told = gives_value(
                question, joined, kind, noun, self.readings, (units[j].text, units[i].text)
            )
            return j if told else None

        candidates = [i for i in range(len(units)) if ok(i)]
        paired = {
            i: j for i in range(len(units)) if not ok(i) and (j := told_before(i)) is not None
        }
        if not candidates and not paired:
            return chosen
        best = max([*candidates, *paired], key=lambda i: float(scores[i]))
        kept = sorted(chosen, key=lambda i: float(scores[i]), reverse=True)
        added = [best] if best not in paired else [paired[best], best]
        kept = [i for i in kept if i not in added][: max(0, self.max_sentences - len(added))]
        return _in_passage_order(units, [*kept, *added])

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

    def _build(
        self, retrieval: Retrieval, units: list[Unit], chosen: list[int], question: str = ""
    ) -> Answer:
        numbers: dict[str, int] = {}
        citations: list[Hit] = []
        pairs: list[tuple[str, int]] = []
        for i in chosen:
            unit = units[i]
            result = retrieval.results[unit.hit_index]
            chunk = unit.chunk or result.chunk
            if chunk.id not in numbers:
                numbers[chunk.id] = len(citations) + 1
                citations.append(_hit(chunk, result))
            pairs.append((_quotable(unit.text), numbers[chunk.id]))
        framing = frame(
            [units[i].chunk or retrieval.results[units[i].hit_index].chunk for i in chosen],
            english=is_english(question),
        )
        body = compose(pairs)
        text = f"{framing}\n{body}" if framing else body
        return Answer(text=text, citations=citations, grounded=True, query=retrieval.query)

    def _outline(
        self, question: str, retrieval: Retrieval, results: Sequence[Scored]
    ) -> list[Unit]:
        """Steps written as headings (« Étape 1 : clarifier votre projet », « Step 2 — … »):
        when two of the top passages sit in sibling step sections of one document, the answer
        is the outline, every step from the first, each heading with the first sentence of its
        section, instead of the body of whichever step matched best."""
        if retrieval.document_chunks is None:
            return []
        for r in results[:3]:
            path = _path(r.chunk)
            if len(path) < 2 or _step_number(path[-1]) is None:
                continue
            parent = path[:-1]
            hits = {
                _path(o.chunk)[-1]
                for o in results
                if _path(o.chunk)[:-1] == parent
                and o.chunk.metadata.get("source") == r.chunk.metadata.get("source")
                and _step_number(_path(o.chunk)[-1]) is not None
            }
            if len(hits) < 2:
                continue
            steps: dict[str, StoredChunk] = {}
            for chunk in retrieval.document_chunks(r.chunk):
                p = _path(chunk)
                if len(p) == len(path) and p[:-1] == parent and _step_number(p[-1]) is not None:
                    steps.setdefault(p[-1], chunk)
            numbers = [_step_number(h) or 0 for h in steps]
            if len(steps) < 3 or numbers[0] != 1 or numbers != sorted(numbers):
                continue
            hit_index = results.index(r)
            out: list[Unit] = []
            for pos, (heading, chunk) in enumerate(list(steps.items())[: self.max_list_items]):
                first = next(
                    (
                        t
                        for t, item in split_units(chunk.text)
                        if not item
                        and _is_useful(t)
                        and fold(t) != fold(heading)
                        and not t.rstrip().endswith(":")  # its list is not quoted
                    ),
                    "",
                )
                line = f"- {heading}" + (f" : {first}" if first else "")
                out.append(Unit(line, hit_index, pos, True, chunk, chunk.id == r.chunk.id))
            return out
        return []

    def _whole_list(self, units: list[Unit], scores: np.ndarray, question: str = "") -> list[int]:
        """For a list or steps question: the best list of the passages, whole from its first
        item, with the sentence that introduces it, when it scores near the best sentence."""
        best = float(np.max(scores))
        runs: list[list[int]] = []
        for i, u in enumerate(units):
            if not u.is_list_item:
                continue
            prev = runs[-1][-1] if runs else None
            if (
                prev is not None
                and units[prev].hit_index == u.hit_index
                and units[prev].position == u.position - 1
            ):
                runs[-1].append(i)
            else:
                runs.append([i])
        candidates: list[tuple[float, float, list[int]]] = []
        by_place = {(u.hit_index, u.position): j for j, u in enumerate(units)}
        wanted = asked_count(question)
        for run in runs:
            if len(run) < 2:
                continue
            first = units[run[0]]
            lead = by_place.get((first.hit_index, first.position - 1))
            lead_ok = lead is not None and not units[lead].is_list_item
            members = ([lead] if lead_ok and lead is not None else []) + run
            score = max(float(scores[j]) for j in members)
            if lead_ok and lead is not None and units[lead].text.rstrip().endswith(":"):
                score += 0.03
            # a list far below the best sentence is taken only when its heading or lead-in
            # is about the question, and it has as many items as the question says
            context = _section_heading(first) + (f" {units[lead].text}" if lead_ok and lead else "")
            margin = LIST_MARGIN if lexical_overlap(question, context) > 0 else 0.1
            if wanted is not None:  # « les six étapes »: a list of six is the answer
                margin = COUNTED_LIST_MARGIN if wanted == len(run) else 0.1
            if _is_reference_section(_section_heading(first)) and not _ASKS_RESOURCES.search(
                fold(question)
            ):
                margin = 0.0  # a list of further reading answers no question but « où lire »
            candidates.append((score, score + margin, members))
        if not candidates:
            return []
        if wanted is not None:  # « les six étapes »: a list of six before a longer or shorter one
            counted = [c for c in candidates if _items(units, c[2]) == wanted and c[1] >= best]
            candidates = counted or candidates
        score, reach, members = max(candidates, key=lambda c: c[0])
        if reach < best:
            return []
        items = [j for j in members if units[j].is_list_item][: self.max_list_items]
        intro = [j for j in members if not units[j].is_list_item]
        return _in_passage_order(units, intro + items)

    def _with_asked_answer(
        self, question: str, units: list[Unit], scores: np.ndarray, chosen: list[int]
    ) -> list[int]:
        """A section whose heading asks the very question (a FAQ's « Qu'est-ce qu'un … ? »)
        is answered by its first sentences, which need not repeat the subject (« C'est une
        personne qui… ») and so may score low: quote its first three, in place of the weakest
        other sentences when the answer would grow past ``max_sentences``."""
        asked = content_words(question)
        if not asked:
            return chosen

        def asks_it(heading: str) -> bool:
            # every word of the question; a one-word question: the heading has no other word
            words = {w for w in content_words(heading) if not w.isdigit()}
            return asked <= words and (len(asked) >= 2 or words == asked)

        opening = [
            i
            for i, u in enumerate(units)
            if u.position <= 2
            and not u.is_list_item
            and _section_heading(u).rstrip().endswith("?")
            and asks_it(_section_heading(u))
            and _is_useful(u.text)
        ]
        if not opening:
            return chosen
        first = min(units[i].hit_index for i in opening)
        added = [i for i in opening if units[i].hit_index == first]
        if all(i in chosen for i in added):
            return chosen
        others = sorted(
            (i for i in chosen if i not in added), key=lambda i: float(scores[i]), reverse=True
        )
        others = [
            i
            for i in others
            if not any(_similar(units[i].text, units[j].text, self.readings) for j in added)
        ]
        return _in_passage_order(units, added + others[: max(1, self.max_sentences - len(added))])

    def _with_named_list(
        self, units: list[Unit], scores: np.ndarray, chosen: list[int], noun: set[str]
    ) -> list[int]:
        """« C'est quoi X et ses métiers ? » asks a definition and a list: after the chosen
        sentences, the best list whose lead-in or section heading names what is asked (« Elle
        recouvre quatre métiers : »), whole, with that lead-in."""
        by_place = {(u.hit_index, u.position): j for j, u in enumerate(units)}
        best: tuple[float, list[int]] | None = None
        for i, u in enumerate(units):
            before = by_place.get((u.hit_index, u.position - 1))
            if not u.is_list_item or (before is not None and units[before].is_list_item):
                continue  # not the first item of a list
            run = [i]
            while (j := by_place.get((u.hit_index, u.position + len(run)))) is not None:
                if not units[j].is_list_item:
                    break
                run.append(j)
            if len(run) < 2:
                continue
            lead = before
            context = _section_heading(u) + (f" {units[lead].text}" if lead is not None else "")
            if not noun & content_words(context):
                continue
            score = max(float(scores[j]) for j in run)
            if best is None or score > best[0]:
                members = ([lead] if lead is not None else []) + run[: self.max_list_items]
                best = (score, members)
        if best is None:
            return chosen
        return _in_passage_order(units, {*chosen, *best[1]})

    @staticmethod
    def _with_neighbour(
        units: list[Unit], scores: np.ndarray, chosen: list[int], wanted: Callable[[str], bool]
    ) -> list[int]:
        """When no chosen sentence holds what is asked (a name for « qui »), quote the best
        neighbouring sentence of the same section (two places either side) that does."""
        if not chosen or any(wanted(units[i].text) for i in chosen):
            return chosen
        near = {(units[i].hit_index, units[i].position + d) for i in chosen for d in (-2, -1, 1, 2)}
        candidates = [
            j
            for j, u in enumerate(units)
            if (u.hit_index, u.position) in near and j not in chosen and wanted(u.text)
        ]
        if not candidates:
            return chosen
        best = max(candidates, key=lambda j: float(scores[j]))
        return _in_passage_order(units, [*chosen, best])

    def decline(
        self, retrieval: Retrieval, verdict: Verdict | None = None, question: str = ""
    ) -> Answer:
        """No reliable answer: say so and name the nearby documents (one hit per document) that
        share the question's subject; none when the question is outside the corpus."""
        log.debug("declining: %s", verdict.reason if verdict else "")
        off_topic = verdict is not None and verdict.reason.startswith(("hors du corpus", "aucun"))
        related: list[Hit] = []
        seen: set[str] = set()
        for r in [] if off_topic else retrieval.results:
            hit = r.to_hit()
            asked = question or retrieval.query
            if hit.source in seen or not shares_subject(asked, hit, self.readings.words):
                continue
            seen.add(hit.source)
            related.append(hit)
            if len(related) == 3:
                break
        text = DECLINE
        if related:
            names = "; ".join(
                f"{h.title or h.source}" + (f" (p. {h.page})" if h.page else "") for h in related
            )
            text += f" Documents proches : {names}."
        return Answer(
            text=text, citations=related, grounded=False, query=retrieval.query, related=related
        )


def shares_subject(
    question: str, hit: Hit, words: Callable[[str], Set[str]] = content_words
) -> bool:
    """Whether a document is about the question's subject: at least half of the question's
    content words (and at least one) occur in its title or in the passage."""
    asked = words(question)
    if not asked:
        return False
    shared = asked & words(f"{hit.title} {hit.text}")
    return len(shared) >= max(1, (len(asked) + 1) // 2)


def _hit(chunk: StoredChunk, result: Scored) -> Hit:
    """The citation of a chunk read for ``result`` (the chunk itself or one of its section)."""
    if chunk.id == result.chunk.id:
        return result.to_hit()
    meta = chunk.metadata
    page = meta.get("page")
    return Hit(
        text=chunk.text,
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        kind=str(meta.get("kind", "autre")),
        page=int(page) if page is not None else None,
        score=round(result.fused, 6),
        chunk_id=chunk.id,
    )


def frame(chunks: Sequence[StoredChunk], english: bool = False) -> str:
    """One line saying where the quotes come from, built from titles and section headings only:
    « D'après « Guide pour les collectivités » (section « Par où commencer ») : »."""
    named: list[str] = []
    seen: set[str] = set()
    paths: dict[str, list[tuple[str, ...]]] = {}
    for chunk in chunks:
        paths.setdefault(str(chunk.metadata.get("title", "")).strip(), []).append(_path(chunk))
    for chunk in chunks:
        title = str(chunk.metadata.get("title", "")).strip()
        if not title or title in seen:
            continue
        seen.add(title)
        # quotes from sibling sections (the steps of an outline) name the section above them
        common = _common_prefix(paths[title])
        section = common[-1] if common else ""
        if section and fold(section) != fold(title) and len(section) <= 90:
            named.append(f"« {title} » (section « {section} »)")
        else:
            named.append(f"« {title} »")
        if len(named) == 3:
            break
    if not named:
        return ""
    if english:
        listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
        return f"From the French-language sources {listed}, quoted in French:"
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " et " + named[-1]
    return f"D'après {listed} :"


# A list or steps question gets the best list when it scores this close to the best sentence:
# a list's items are short and score lower one by one than a sentence echoing the question.
LIST_MARGIN = 0.2
COUNTED_LIST_MARGIN = 0.35  # the list has as many items as the question says

# « Ressources », « Pour aller plus loin », « Bibliographie »: other documents, not answers.
_REFERENCE_SECTION = re.compile(
    r"^(?:\d+[.)]?\s*)?(?:les\s+)?(?:ressources|references|bibliographie|sources|pour aller plus "
    r"loin|a lire|lectures|liens utiles|en savoir plus|further reading|references and resources)"
    r"(?:\s+utiles)?\s*$"
)
_ASKS_RESOURCES = re.compile(
    r"\b(?:ressources?|bibliograph\w*|references?|ou (?:trouver|lire|me former|se former)|"
    r"pour aller plus loin|a lire|lectures?|resources?|reading)\b"
)


def _is_reference_section(heading: str) -> bool:
    return bool(_REFERENCE_SECTION.match(fold(heading).strip()))


LIST_EMBEDDED = 3  # times ``max_embedded`` for a list question (see ``_score``)

NEXT_TO_CHOSEN = 0.12  # a sentence next to one already quoted may score this much lower

MAX_ITEM_CHARS = 320


def _quotable(text: str) -> str:
    """A long list item cut after its first sentences (marked « … »); other units as they are."""
    if len(text) <= MAX_ITEM_CHARS or not LIST_ITEM.match(text):
        return text
    kept = ""
    for sentence in split_sentences(text):
        if kept and len(kept) + len(sentence) + 1 > MAX_ITEM_CHARS:
            return f"{kept} …"
        kept = f"{kept} {sentence}".strip()
    return kept


# « Ce guide fait le point sur… », « Cette fiche présente… »: about the document, not the subject.
_ABOUT_DOCUMENT = re.compile(
    r"^(?:(?:ce|cette|le present|la presente|notre)\s+(?:guide|document|fiche|note|chapitre|"
    r"section|texte|page|rapport|livret|kit|module|partie|annexe|boite a outils)\b"
    r"|(?:il|elle)\s+(?:presente|propose|revient|detaille|rappelle)\s+d'abord\b"
    r"|(?:on|nous)\s+(?:verra|presenterons|verrons)\b)"
)
_DOC_VERBS = re.compile(
    r"\b(?:presente|fait le point|propose|decrit|s'adresse|revient|rassemble|detaille|explique|"
    r"resume|aborde|donne|vise a|a pour objet|passe en revue)\b"
)


def _about_document(text: str) -> bool:
    t = fold(text).replace("’", "'")
    return bool(_ABOUT_DOCUMENT.match(t)) and bool(_DOC_VERBS.search(t))


_DEFINES = re.compile(
    r"\b(?:est (?:un|une|le|la|l'|ce|celui|celle)|sont (?:des|les)|designe|signifie|"
    r"consiste|correspond|se definit|s'intitule|on appelle|on entend par|c'est-a-dire|"
    r"renvoie a|qualifie)\b"
)
_NAME = re.compile(
    r"(?<!^)(?<![.!?] )\b(?:[A-ZÀ-Ý][a-zà-ÿ]+(?:[- ][A-ZÀ-Ý][a-zà-ÿ]+)*|[A-Z]{2,})\b"
)


def _names_someone(text: str) -> bool:
    """A capitalised name or an acronym past the sentence's first word (« Le RAMEAU »)."""
    return bool(_NAME.search(text.split(" ", 1)[1] if " " in text else ""))


SUBJECT_FIRST = 0.06  # a definition question: the sentence opening on its subject

_DEFINITION_CUE = re.compile(
    r"\b(?:qu'est[- ]ce (?:que|qu)|c'est quoi|que (?:signifie|veut dire|designe)|"
    r"definition d[eu]s?|definir|ca veut dire|what is|what's|what does|mean|define)\b"
    r"|\b(?:et|alors|donc|exactement)\b"
)


def defined_subject(question: str) -> set[str]:
    """The stems of what a definition question asks about (« et la coopération économique
    alors, c'est quoi ? » -> coopération, économique)."""
    return content_words(_DEFINITION_CUE.sub(" ", fold(question).replace("’", "'")))


def _opens_on(
    subject: set[str], unit: Unit, words: Callable[[str], Set[str]] = content_words
) -> bool:
    """Whether a sentence's first words name the whole subject (« La coopération économique
    réunit… »): the sentence is about it, not one that mentions it on the way. The stems of
    its first words are among the sentence's (no token spans a space), so a sentence that
    lacks one of the subject's is not tokenized again (most of them: ``words`` holds theirs)."""
    if unit.is_list_item or not subject <= words(unit.text):
        return False
    return subject <= words(" ".join(unit.text.split()[:6]))


_DEFINITION_HEADING = re.compile(
    r"^(?:\d+[.)]?\s*)?(?:definitions?|qu'est-ce qu|de quoi parle-t-on|what is)"
)


def _defines_section(unit: Unit) -> bool:
    """A sentence of a section titled « Définition » (« Qu'est-ce que … ? »): all of them,
    so the section's own sentences keep their order of merit."""
    heading = fold(_section_heading(unit)).replace("’", "'").strip()
    return bool(_DEFINITION_HEADING.match(heading))


def _shape_bonus(asked: str, unit: Unit) -> float:
    """What the kind of question favours: a defining sentence for « qu'est-ce que », a
    sentence naming someone for « qui »."""
    if asked == "definition" and not unit.is_list_item:
        return 0.06 if _DEFINES.search(fold(unit.text).replace("’", "'")) else 0.0
    if asked == "who":
        return 0.05 if _names_someone(unit.text) else 0.0
    return 0.0


def _around(section: Sequence[StoredChunk], hit: StoredChunk, most: int) -> list[StoredChunk]:
    """At most ``most`` chunks of a section, in order, centred on the retrieved one."""
    ordered = sorted(section, key=lambda c: int(c.metadata.get("chunk_index", 0)))
    ids = [c.id for c in ordered]
    if hit.id not in ids:
        return [hit]
    at = ids.index(hit.id)
    start = max(0, min(at - most // 2, len(ordered) - most))
    return ordered[start : start + most]


def _with_subsections(
    document: Sequence[StoredChunk],
    hit: StoredChunk,
    read: list[StoredChunk],
    budget: int,
    path_of: Callable[[StoredChunk], tuple[str, ...]] | None = None,
) -> list[StoredChunk]:
    """The chunks read around ``hit``: its section (``read``) and, when they fit in ``budget``
    characters, the subsections under its heading, in reading order. A short section that
    announces (« 6. Deux textes de référence ») is what matches, while its 6.1 and 6.2 say
    which: retrieve small, read big. Sibling sections are not read: tried, their sentences
    outbid the passage's own answer (a yes/no settled in the next passage)."""
    path_of = path_of or _path
    path = path_of(hit)
    if not path:
        return read
    under = [c for c in document if path_of(c)[: len(path)] == path]
    if not any(c.id == hit.id for c in under) or sum(len(c.text) for c in under) > budget:
        return read
    return under


def _without_dangling(units: list[Unit], chosen: list[int]) -> list[int]:
    """Drop a sentence announcing what follows (« … : ») whose list is not quoted, and a
    sentence that needs the one before (« Tous financent… ») when it is not quoted, unless
    nothing would be left."""
    kept_set = set(chosen)
    by_place = {(u.hit_index, u.position): j for j, u in enumerate(units)}
    out: list[int] = []
    for i in chosen:
        u = units[i]
        if not u.is_list_item and u.text.rstrip().endswith(":"):
            nxt = by_place.get((u.hit_index, u.position + 1))
            if nxt is None or nxt not in kept_set:
                continue
        if not u.is_list_item and _ANAPHORIC.match(u.text):
            before = by_place.get((u.hit_index, u.position - 1))
            if before is None or before not in kept_set:
                continue
        out.append(i)
    return out or chosen


# A sentence opening on a pronoun (« Elle n'a donc jamais été adoptée ») needs the one before.
_ANAPHORIC = re.compile(
    r"^(?:(?:Il|Elle|Ils|Elles|Celui-ci|Celle-ci|Ceux-ci|Celles-ci|Ce dernier|Cette dernière"
    r"|Ces derniers|Ces dernières|Cela|Ceci|Lui|Eux|Tous|Toutes|Les deux|L'un|L'une)\b"
    r"|C'est (?:à|pour|de|dans|sur|par|ainsi|pourquoi|ce|cette|ces|là)\b"
    r"|(?:Ce|Cet|Cette|Ces)\s+(?:deux|trois|quatre|\w+s?)\s+(?:textes?|documents?|dispositifs?|"
    r"besoins?|démarches?|outils?|modes?|étapes?|conditions?|travaux|derniers?|points?)\b"
    r"|[^,.;:]{2,40},\s+(?:lui|elle|eux|elles),)"
    r"|^.{0,80}\bvient compléter ces\b"
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


def _common_prefix(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    out: list[str] = []
    for level in zip(*paths, strict=False):
        if any(h != level[0] for h in level):
            break
        out.append(level[0])
    return tuple(out)


def _path(chunk: StoredChunk) -> tuple[str, ...]:
    """A chunk's heading path (« Guide > La démarche > Étape 1 : … »)."""
    return _section_path(str(chunk.metadata.get("section", "")))


def _section_path(section: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in section.split(" > ") if h)


# « Étape 1 : … », « Étape 2 — … », « Step 3. … », « Phase 4 – … »: a step written as a heading.


def _step_number(heading: str) -> int | None:
    m = STEP_HEADING.match(fold(heading))
    return int(m.group(1)) if m else None


FAQ_BONUS = 0.1


def _answers_asked_heading(
    question: str, unit: Unit, words: Callable[[str], Set[str]] = content_words
) -> float:
    """The first sentences under a heading that asks the user's question (a FAQ: « Faut-il
    créer une fondation d'entreprise ? » for « faut-il monter une fondation d'entreprise
    avant… ») are its answer: a bonus for them. ``words``: ``content_words``, or a memo of
    it (the question is read for each unit)."""
    heading = _section_heading(unit)
    if unit.position > 2 or not heading.rstrip().endswith("?"):
        return 0.0
    asked = words(question)
    if len(asked) < 2:
        return 0.0
    shared = asked & words(heading)
    return FAQ_BONUS if len(shared) >= max(2, (len(asked) + 1) // 2) else 0.0


def _section_heading(unit: Unit) -> str:
    """The last heading of the section a unit was read from."""
    meta = unit.chunk.metadata if unit.chunk is not None else {}
    return str(meta.get("section", "")).split(" > ")[-1]


_COUNT_WORDS = {
    **{w: n for w, n in FRENCH_NUMBERS.items() if n <= 10},
    **{"two": 2, "three": 3, "four": 4, "five": 5, "seven": 7, "eight": 8, "nine": 9, "ten": 10},
}
_ASKED_COUNT = re.compile(
    r"\b(?:les|des|ses|leurs|ces|the|its|their)\s+(\d{1,2}|" + "|".join(_COUNT_WORDS) + r")\s+[a-z]"
)


def asked_count(question: str) -> int | None:
    """How many items the question says the answer has (« les six étapes », « the four modes »)."""
    m = _ASKED_COUNT.search(fold(question))
    if m is None:
        return None
    word = m.group(1)
    return int(word) if word.isdigit() else _COUNT_WORDS[word]


def _has_items(text: str) -> bool:
    return any(item for _, item in split_units(text))


def _items(units: list[Unit], members: Iterable[int]) -> int:
    return sum(units[j].is_list_item for j in members)


# Words that make a question open (« qui », « comment »…); a question without any asks yes or no.
_OPEN_QUESTION = re.compile(
    r"\b(?:qui|que|qu|quoi|quel|quelle|quels|quelles|quand|ou|comment|pourquoi|combien|"
    r"lequel|laquelle|lesquels|lesquelles|what|who|when|where|why|how|which)\b"
)
_POLAR_START = re.compile(
    r"^(?:est-ce qu\w*|faut-il|y a-t-il|peut-on|doit-on|is|are|do|does|can)\b"
)


def asks_yes_no(question: str) -> bool:
    """Whether a question asks yes or no (« Faut-il … ? », « Est-ce que … ? », « le mécénat
    c'est moins bien … ? »): no open question word, or a yes/no opening."""
    q = fold(question).replace("’", "'").strip()
    if _POLAR_START.match(q):
        return True
    return q.endswith("?") and not _OPEN_QUESTION.search(q.replace("'", " "))


# a conjugated verb: « Les conditions … ont été reprises … ? » states something to confirm,
# where « les leviers de l'investisseur sociétal ? » only names what is wanted
_FINITE_VERB = re.compile(
    r"\b(?:est|sont|a|ont|avait|avaient|etait|etaient|peut|peuvent|doit|doivent|faut|existe|"
    r"existent|sera|seront|is|are|was|were|has|have|can)\b"
)


def states_yes_no(question: str) -> bool:
    """A yes/no question built on a verb, whatever nouns it holds (« conditions », « modes »)."""
    return asks_yes_no(question) and bool(_FINITE_VERB.search(fold(question).replace("'", " ")))


def _with_next(units: list[Unit], scores: np.ndarray, chosen: list[int]) -> list[int]:
    """A yes/no answer is the best sentence and the one after it in its passage: the answer
    is often the first (« évitez la reconduction tacite »), its reason or limit the next."""
    if not chosen:
        return chosen
    best = max(chosen, key=lambda i: float(scores[i]))
    u = units[best]
    after = [
        j
        for j, v in enumerate(units)
        if v.hit_index == u.hit_index and v.position == u.position + 1 and not v.is_list_item
    ]
    if not after or after[0] in chosen or u.is_list_item:
        return chosen
    return _in_passage_order(units, [*chosen, after[0]])


def _with_announced_list(
    question: str, units: list[Unit], scores: np.ndarray, chosen: list[int]
) -> list[int]:
    """For « qui … ? »: a sentence a few places after the best one that announces a list and
    shares a word with the question (« Ces ateliers étaient co-animés par trois structures : »)
    is quoted; its items, the names, follow it (``_with_lists``)."""
    if not chosen:
        return chosen
    u = units[max(chosen, key=lambda i: float(scores[i]))]
    by_place = {(v.hit_index, v.position): j for j, v in enumerate(units)}
    for step in range(1, 5):
        nxt = by_place.get((u.hit_index, u.position + step))
        after = by_place.get((u.hit_index, u.position + step + 1))
        if nxt is None:
            continue  # a sentence that is no unit (too short to quote)
        if units[nxt].is_list_item:
            return chosen
        if (
            after is not None
            and nxt not in chosen
            and units[nxt].text.rstrip().endswith(":")
            and units[after].is_list_item
            and lexical_overlap(question, units[nxt].text) > 0
        ):
            return _in_passage_order(units, [*chosen, nxt])
    return chosen


# « … et ses métiers ? », « … et quelles sont ses missions ? », « and its main types? »
_ALSO_ITEMS = re.compile(
    r"\b(?:et|and)\s+(?:quels sont |quelles sont |what are )?(?:ses|leurs|its|their)\s+"
    r"(?:\w+\s+)?(\w+[sx])\s*\??\s*$"
)


def also_asked_items(question: str) -> set[str]:
    """The stem of the plural thing a question asks for after its first ask (« c'est quoi
    la catalyse et ses métiers » -> métier), or nothing."""
    m = _ALSO_ITEMS.search(fold(question).replace("’", "'"))
    return content_words(m.group(1)) if m else set()


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


def _similar(a: str, b: str, readings: Readings | None = None) -> bool:
    """Whether sentence ``a`` adds next to nothing to ``b``: most of its content words (stems,
    accents folded) are in ``b`` — the same fact told by two documents, or twice in one."""
    words = readings.words if readings is not None else content_words
    wa, wb = words(a), words(b)
    if not wa or not wb:
        return False
    return len(wa & wb) / len(wa) > 0.8
