"""The one French sentence splitter, shared by the extractive and the LLM answerers.

A sentence ends after . ! ? … (maybe closing a quote) when what follows opens a sentence (a
capital, a digit, « " ( [ or a Markdown *), or after a bare » when a capital follows
(« … » (Comité 21 …) goes on: that parenthesis belongs to the sentence).

    >>> split_sentences("Le fonds est créé en 2020. Il finance des alliances.")
    ['Le fonds est créé en 2020.', 'Il finance des alliances.']
"""

from __future__ import annotations

import re

SENTENCE_END = re.compile(
    r"(?:(?<=[.!?…])|(?<=[.!?…]»))\s+(?=[«\"(\[*A-ZÀ-ÖØ-Ý0-9])|(?<=»)\s+(?=[A-ZÀ-ÖØ-Ý])"
)
# « M. Dupont », « p. 4 », « art. 3 »: a full stop that ends no sentence.
_ABBREVIATION = re.compile(r"(?:\b(?:M|Mme|MM|Dr|p|pp|art|cf|etc|n°|no|vol|chap|env)\.)$")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, stripped, in order (abbreviations such as « M. » kept inside)."""
    out: list[str] = []
    for piece in SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if out and _ABBREVIATION.search(out[-1]) and not out[-1].endswith("etc."):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out
