"""The rerank stage: reorder the fused candidates before the answerer sees them.

A reranker (a cross-encoder, an LLM judge, business rules) implements ``Reranker`` and is given
to ``HybridSearcher``; it may reorder or drop candidates, never invent them, and should keep
each ``Scored``'s signals as they are (the decline rule reads ``Retrieval.evidence_strength``).
``KEEP_ORDER`` keeps the fused order; ``StructureReranker`` (the default of the assistant)
reads the shape of each passage:

- a *fragment* (a heading and a few words, the tail of a sentence cut by a page break) ranks
  lower: short passages score high in BM25 and close in embeddings, yet hold no answer;
- a passage that *describes its document* (« Ce guide présente… », « Cette fiche propose… »)
  ranks lower, unless the question is about a document.

A list gets no bonus: the items of « quelles sont les sept approches ? » are as often named in
one sentence (measured: a bonus for every list question moved other lists above those
sentences, fact coverage 0.754 -> 0.729), and the one for steps questions was left at 0.
Each rule multiplies the fused score, so a passage far from the question stays far.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.indexing.store import StoredChunk
from assistant.retrieval.followup import asked_part
from assistant.retrieval.results import Scored
from assistant.text.french import fold
from assistant.text.structure import NUMBERED_ITEM, STEP_HEADING


class Reranker(Protocol):
    """A reranker may also have ``prepare(chunks)``: the searcher calls it once with a small
    chunk table (``retrieval.exact.EXACT_MAX``), for per-chunk work done before the queries."""

    def rerank(self, query: str, results: Sequence[Scored]) -> list[Scored]:
        """``results`` (best first, after fusion and near-duplicate collapse), reordered."""
        ...


class KeepOrder:
    """The identity reranker: the fused order is the final one."""

    def rerank(self, query: str, results: Sequence[Scored]) -> list[Scored]:
        return list(results)


KEEP_ORDER = KeepOrder()


# Opening words of a passage about its own document: « Ce guide présente », « Cette fiche
# propose », « Le présent document décrit », « Vous trouverez dans ce guide ».
_ABOUT_DOCUMENT = re.compile(
    r"^(?:(?:ce|cette|le present|la presente|notre)\s+(?:guide|document|fiche|note|"
    r"chapitre|section|texte|page|rapport|livret|kit|module|partie|annexe|boite a outils|"
    r"dossier|brochure|vademecum|memento|publication|etude)\b[^.!?]{0,80}?\b(?:presente|"
    r"propose|decrit|s'adresse|rassemble|detaille|explique|resume|aborde|fait le point|"
    r"vise|a pour objet|passe en revue|revient|suit|donne|comprend|contient|se compose)"
    r"|(?:vous trouverez|on trouvera|nous (?:presentons|verrons|proposons))\b"
    r"|(?:document|page|texte) (?:d'exemple|redige|etabli|prepare)\b)"
)
# The question is about a document itself: then passages that describe one are what it wants.
_ASKS_DOCUMENT = re.compile(
    r"\b(?:guide|document|fiche|note|rapport|livret|kit|texte|brochure|publication|ouvrage|"
    r"livre|etude|dossier|chapitre|report|booklet|handbook)s?\b"
)
_LETTERS = re.compile(r"[^\W\d_]+")  # runs of letters: counted by length, not one by one
# A question asking where to start (on folded text).
_START_WORDS = (
    r"par ou (?:commencer|debuter|demarrer)|comment (?:commencer|demarrer|debuter|se lancer|"
    r"s'y prendre)|premiers pas|where (?:do|should|can) (?:i|we) (?:start|begin)|"
    r"how (?:do|can|should) (?:i|we) (?:start|begin|get started)"
)
_START = re.compile(rf"\b(?:{_START_WORDS})\b")


@dataclass(frozen=True)
class Shape:
    """What the reranker reads in a passage (computed once per chunk)."""

    fragment: bool  # too little text of its own to hold an answer
    about_document: bool  # opens by describing its document


def _body(chunk: StoredChunk) -> str:
    """The passage without its leading section heading (chunks start with it)."""
    text = chunk.text.strip()
    section = str(chunk.metadata.get("section", ""))
    heading = section.rsplit(" > ", 1)[-1].strip() if section else ""
    first, sep, rest = text.partition("\n")
    if sep and (first.strip() == heading or (heading and text.startswith(heading))):
        return text[len(heading) :].strip() if text.startswith(heading) else rest.strip()
    return text


def shape(chunk: StoredChunk, min_letters: int = 100) -> Shape:
    """The shape of ``chunk`` (see the module doc)."""
    body = _body(chunk)
    folded = fold(body)
    letters = sum(map(len, _LETTERS.findall(body)))
    starts_mid_sentence = bool(body) and body[0].islower()
    fragment = letters < min_letters or (starts_mid_sentence and letters < 2 * min_letters)
    return Shape(fragment=fragment, about_document=bool(_ABOUT_DOCUMENT.match(folded)))


def _about_documents(query: str) -> bool:
    """Whether ``query`` (its new ask, for a rewritten follow-up) is about a document."""
    return bool(_ASKS_DOCUMENT.search(fold(asked_part(query))))


def lexical_query(query: str) -> str:
    """The query BM25 reads: « par où commencer ? » asks for the steps of a procedure, and
    documents name them « étapes »; the word is added (the dense side reads the question)."""
    ask = fold(asked_part(query))
    return f"{query} étapes" if _START.search(ask) else query


def continues(chunk: StoredChunk) -> bool:
    """Whether ``chunk`` takes up a passage cut before it: it opens mid-sentence (a page break
    fell inside one) or on a numbered item past the first (« 4. … » with no « 1. »). The passage
    it continues holds the start of that sentence or list (see ``HybridSearcher``)."""
    body = _body(chunk)
    if body[:1].islower():
        return True
    number = _item_number(fold(body[:200]))
    return number is not None and number > 1


def _item_number(line: str) -> int | None:
    """The number of the numbered item or step (« 4. », « 4) », « 4° », « Étape 4 ») that
    ``line`` (folded) opens with, if any (see ``text.structure``)."""
    m = NUMBERED_ITEM.match(line) or STEP_HEADING.match(line)
    return int(m.group(1)) if m else None


class StructureReranker:
    """Reorders the fused candidates by the shape of each passage (see the module doc).

    ``fragment``, ``about_document``: the factors a fragment and a passage describing its
    document get. Shapes are cached by chunk id (``max_cached``)."""

    def __init__(
        self,
        *,
        fragment: float = 0.75,
        about_document: float = 0.8,
        max_cached: int = 200_000,
    ) -> None:
        self.fragment = fragment
        self.about_document = about_document
        self.max_cached = max_cached
        self._shapes: dict[str, Shape] = {}

    def _shape(self, chunk: StoredChunk) -> Shape:
        got = self._shapes.get(chunk.id)
        if got is None:
            got = shape(chunk)
            if len(self._shapes) >= self.max_cached:
                self._shapes.clear()
            self._shapes[chunk.id] = got
        return got

    def prepare(self, chunks: Iterable[StoredChunk]) -> None:
        """Compute the shapes of ``chunks`` now (up to ``max_cached``): a search otherwise
        computes those of its new candidates, ~0.8 ms of a search at 10k chunks (p50 over
        the 214 eval questions; 0.4 s for the 10k shapes at once)."""
        for chunk in chunks:
            if len(self._shapes) >= self.max_cached:
                return
            if chunk.id not in self._shapes:
                self._shapes[chunk.id] = shape(chunk)

    def factor(self, query: str, chunk: StoredChunk) -> float:
        """What ``chunk``'s fused score is multiplied by for ``query``."""
        return self._factor(self._shape(chunk), _about_documents(query))

    def _factor(self, s: Shape, about_documents: bool) -> float:
        f = 1.0
        if s.fragment:
            f *= self.fragment
        if s.about_document and not about_documents:
            f *= self.about_document
        return f

    def rerank(self, query: str, results: Sequence[Scored]) -> list[Scored]:
        about_documents = _about_documents(query)
        scored = [
            (r.fused * self._factor(self._shape(r.chunk), about_documents), i, r)
            for i, r in enumerate(results)
        ]
        scored.sort(key=lambda t: (-t[0], t[1]))
        return [r for _, _, r in scored]
