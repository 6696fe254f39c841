"""The ``[n]`` contract, in one place: how an answer cites its passages, how a marker is written,
read, checked, renumbered and removed.

An answer's text is a sequence of units (a sentence, or a list item on its own line), each ending
with the marker of the passage it quotes or paraphrases: ``« Le fonds finance la coordination. [1]
»``. ``n`` is 1-based and indexes ``Answer.citations``. Every answerer writes markers through
:func:`cite` / :func:`compose`, the edges read them through :func:`markers` / :func:`quoted_units`
/ :func:`stream_steps`, and a model's own markers are checked (:func:`check_citations`) or
removed (:func:`strip_citations`) here:

    compose([("Une phrase.", 1), ("1. Une étape.", 2)])   # 'Une phrase. [1]\\n1. Une étape. [2]'
    check_citations("Créé en 2006 [2]. Sans source.", n_passages=3).text   # 'Créé en 2006 [1].'
    quoted_units("A est vrai. [1] B aussi. [2]")   # [('A est vrai.', 1), ('B aussi.', 2)]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from assistant.text.sentences import split_sentences
from assistant.text.structure import LIST_ITEM
from assistant.types import Hit

# A marker as answers carry it: "[3]".
MARKER = re.compile(r"\[(\d+)\]")
# Any short bracket a model may write: "[2]", "[passage 3]", "[1, 2]", "[sic]", "[...]".
_BRACKET = re.compile(r"\[[^\[\]\n]{0,40}\]")
# A bracket that cites: "[2]", "[passage 3]", "[sources 1, 2]", "[2-4]", "[1 et 3]".
_MODEL_MARKER = re.compile(
    r"\[\s*(?:(?:passages?|sources?|doc(?:ument)?s?)\s*)?"
    r"(\d{1,3}(?:\s*(?:,|;|-|–|et|and)\s*\d{1,3})*)\s*\]",
    re.IGNORECASE,
)
# A bracket holding a digit, with the space before it: what strip_citations removes.
_NUMBERED_BRACKET = re.compile(r"\s*\[[^\[\]\n]{0,40}\d[^\[\]\n]{0,40}\]")
_NUMBER = re.compile(r"\d{1,3}|[-–]")
_ONLY_MARKERS = re.compile(r"^(?:\s*\[[^\[\]\n]{1,40}\])+")
_MARKER_END = re.compile(r"(?<=\])\s+")
_UNIT = re.compile(r"(.+?)\s*\[(\d+)\](?=\s|$)", re.DOTALL)


# -- writing --------------------------------------------------------------------------------
def marker(n: int) -> str:
    """``[n]``."""
    return f"[{n}]"


def cite(unit: str, n: int) -> str:
    """``unit`` followed by its marker: ``« Une phrase. [1] »``."""
    return f"{unit.rstrip()} {marker(n)}"


def compose(units: Sequence[tuple[str, int]]) -> str:
    """Join (text, citation number) pairs: each unit ends with its [n] marker; list items keep
    their own lines."""
    parts: list[str] = []
    for text, n in units:
        body = cite(text, n)
        parts.append(f"\n{body}" if LIST_ITEM.match(text.lstrip()) else body)
    return " ".join(parts).replace(" \n", "\n").strip()


def format_citation(n: int, hit: Hit) -> str:
    """``[n] Titre, p. 4 (recit) — recits/x.pdf`` for a plain-text sources list."""
    page = f", p. {hit.page}" if hit.page else ""
    return f"{marker(n)} {hit.title or hit.source}{page} ({hit.kind}) — {hit.source}"


# -- reading --------------------------------------------------------------------------------
def markers(text: str) -> Iterator[tuple[int, int, int]]:
    """(start, end, n) of every ``[n]`` in ``text``, in order."""
    for m in MARKER.finditer(text):
        yield m.start(), m.end(), int(m.group(1))


def quoted_units(answer_text: str) -> list[tuple[str, int]]:
    """(quoted text, citation number) pairs of an answer whose units end with ``[n]``."""
    return [
        (m.group(1).strip(), int(m.group(2)))
        for m in _UNIT.finditer(answer_text)
        if m.group(1).strip()
    ]


def stream_steps(text: str) -> list[str]:
    """Growing prefixes of an answer, one more unit (ending with its [n]) each time."""
    parts = [p for p in _MARKER_END.split(text.strip()) if p]
    steps: list[str] = []
    current = ""
    for part in parts:
        current = f"{current} {part}" if current else part
        steps.append(current)
    return steps or [text]


def split_answer(text: str) -> list[list[str]]:
    """A model's answer as lines of sentences. A list prefix ("1.", "-") stays with its item; a
    fragment or a line made only of markers ("... fin. [1]", "...\\n[1]") joins the sentence
    before it."""
    lines: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        prefix = LIST_ITEM.match(line)
        head = prefix.group(0) if prefix else ""
        units: list[str] = []
        for frag in split_sentences(line[len(head) :]):
            lead = _ONLY_MARKERS.match(frag)
            earlier = [u for u in lines if u]
            previous = units or (earlier[-1] if earlier else None)
            if lead and previous is not None:
                previous[-1] += " " + lead.group(0).strip()
                frag = frag[lead.end() :]
            if frag.strip():
                units.append(frag.strip())
        if units and head:
            units[0] = head + units[0]
        lines.append(units)
    return lines


def without_list_prefix(unit: str) -> str:
    """A unit without its list prefix ("1. ", "- ")."""
    return LIST_ITEM.sub("", unit).strip()


# -- a model's markers ----------------------------------------------------------------------
def strip_citations(text: str) -> str:
    """Every numbered bracket removed (a model's own markers, when we do not trust them)."""
    return _NUMBERED_BRACKET.sub("", text)


def drop_markers(text: str) -> str:
    """Numbered brackets removed, other brackets ("[...]", "[sic]") kept, spaces tidied: an
    old answer whose passages the model no longer sees."""
    return _tidy(_BRACKET.sub(lambda m: _rewrite(m.group(0), 0, {}), text))


@dataclass(frozen=True)
class CheckedText:
    """A generated answer after citation checking.

    ``text`` has markers renumbered 1..m in order of first use; ``sources[i]`` is the original
    passage number (1-based) of the new marker [i+1]; ``dropped`` lists the removed sentences.
    """

    text: str
    sources: list[int] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _numbers(group: str) -> list[int]:
    """``"1, 2"`` -> [1, 2]; ``"2-4"`` -> [2, 3, 4] (short ranges only)."""
    out: list[int] = []
    tokens = _NUMBER.findall(group)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in "-–":
            i += 1
            continue
        n = int(tok)
        if i + 2 < len(tokens) and tokens[i + 1] in "-–":
            end = int(tokens[i + 2])
            if n <= end <= n + 10:
                out.extend(range(n, end + 1))
                i += 3
                continue
        out.append(n)
        i += 1
    return out


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+([.,])", r"\1", text)
    return text.strip()


def _cited(bracket: str, n_passages: int) -> list[int]:
    """The valid passage numbers a bracket cites (none for "[9]" with 5 passages, or "[sic]")."""
    m = _MODEL_MARKER.fullmatch(bracket)
    if not m:
        return []
    return [n for n in dict.fromkeys(_numbers(m.group(1))) if 1 <= n <= n_passages]


def _rewrite(bracket: str, n_passages: int, renumber: dict[int, int]) -> str:
    """A bracket as it appears in the checked answer: valid markers renumbered, invalid ones and
    stray numbered brackets removed, other brackets ("[...]", "[sic]") kept."""
    nums = _cited(bracket, n_passages)
    if not nums:
        return "" if any(c.isdigit() for c in bracket) else bracket
    for n in nums:
        renumber.setdefault(n, len(renumber) + 1)
    return "".join(marker(k) for k in sorted(renumber[n] for n in nums))


def check_citations(text: str, n_passages: int) -> CheckedText:
    """Keep the sentences that cite at least one of the ``n_passages`` given passages.

    Markers out of range are removed; a sentence left without a valid one is dropped; a lead-in
    ending with ":" is kept only when the next sentence is kept. Markers are renumbered in order
    of first use so that ``sources`` lists only what the answer cites.
    """
    lines = split_answer(text)
    flat = [(li, u) for li, units in enumerate(lines) for u in units]
    keep = [any(_cited(b, n_passages) for b in _BRACKET.findall(unit)) for _, unit in flat]
    for i in range(len(flat) - 2, -1, -1):  # lead-ins such as "Voici les étapes :"
        bare = _BRACKET.sub("", flat[i][1]).strip()
        lead_in = bare.rstrip("* ").endswith(":") and len(bare) < 160
        if not keep[i] and lead_in and keep[i + 1]:
            keep[i] = True
    renumber: dict[int, int] = {}
    out_lines: list[list[str]] = [[] for _ in lines]
    dropped: list[str] = []
    for (li, unit), ok in zip(flat, keep, strict=True):
        if ok:
            rewritten = _BRACKET.sub(lambda m: _rewrite(m.group(0), n_passages, renumber), unit)
            out_lines[li].append(_tidy(rewritten))
        else:
            dropped.append(unit)
    body = "\n".join(" ".join(u) for u in out_lines if u)
    return CheckedText(
        text=body.strip(),
        sources=sorted(renumber, key=renumber.__getitem__),
        dropped=dropped,
    )


class Renumbering:
    """Markers given in order of first use: ``Renumbering().of(3)`` is 1, then ``of(1)`` is 2;
    ``sources`` lists the original (1-based) passage numbers in marker order."""

    def __init__(self) -> None:
        self._map: dict[int, int] = {}

    def of(self, passage: int) -> int:
        return self._map.setdefault(passage, len(self._map) + 1)

    @property
    def sources(self) -> list[int]:
        return sorted(self._map, key=self._map.__getitem__)
