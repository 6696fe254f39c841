"""Repair words whose ligature glyph the PDF font dropped: « collec vités » → « collectivités ».

Some fonts map the « ti », « fi », « fl », « ff » ligatures to nothing: pypdf then gives
« collec vités », « Transi on », or, once the cleaning drops the empty glyph, « collecvité ».
A pair of pieces (or a single unknown word) is rejoined with the missing letters when that makes
a word the document itself uses elsewhere, or a word of the French word list (``pyspellchecker``'s
French frequency list, read once). Words already known are never touched.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Collection
from functools import lru_cache
from importlib import resources

log = logging.getLogger(__name__)

LIGATURES = ("ti", "fi", "fl", "ff", "ffi", "ft", "tt")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")


@lru_cache(maxsize=1)
def french_words() -> dict[str, int]:
    """Lowercased French words (about 140 000) and their frequency; empty when the list is not
    installed."""
    try:
        data = resources.files("spellchecker").joinpath("resources/fr.json.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        log.info("French word list not installed: ligature repair uses the document only")
        return {}
    words: dict[str, int] = json.loads(gzip.decompress(data))
    return words


def _key(word: str) -> str:
    return word.lower().replace("’", "'").rsplit("'", 1)[-1]


def _in_list(word: str) -> bool:
    return _key(word) in french_words()


def _known(word: str, known: Collection[str]) -> bool:
    return _key(word) in known or _in_list(word)


def _rejoined(left: str, right: str, known: Collection[str]) -> str | None:
    for letters in LIGATURES:
        candidate = f"{left}{letters}{right}"
        if _known(candidate, known):
            return candidate
    return None


def _rarer_than(piece: str, word: str) -> bool:
    """« transi » is far rarer than « transition »: the pieces are the broken word."""
    freq = french_words()
    return freq.get(_key(piece), 0) < freq.get(_key(word), 0)


def _tail(token: str) -> str:
    """The word a token ends with (« (collec » → « collec »)."""
    m = re.search(r"[^\W\d_]+$", token)
    return m.group(0) if m else ""


def _head(token: str) -> str:
    m = re.match(r"[^\W\d_]+", token)
    return m.group(0) if m else ""


def repair_ligatures(text: str, known: Collection[str] = frozenset()) -> str:
    """``text`` with dropped-ligature words rejoined (see module doc); ``known`` adds the
    document's own vocabulary (lowercased)."""
    if not french_words() and not known:
        return text

    parts = re.split(r"( )", text)  # words and the single spaces between them
    i = 0
    while i + 2 < len(parts):
        left, right = parts[i], parts[i + 2]
        lw, rw = _tail(left), _head(right)
        if lw and rw and right[:1].islower() and not lw.isupper():
            fixed = _rejoined(lw, rw, known)
            whole_words = _in_list(lw) and _in_list(rw)
            if fixed and (
                not whole_words
                or (
                    len(lw) >= 4
                    and _rarer_than(lw, fixed)
                    and (len(rw) <= 3 or _rarer_than(rw, fixed))
                )
            ):
                parts[i : i + 3] = [left[: len(left) - len(lw)] + fixed + right[len(rw) :]]
                continue
        i += 2
    text = "".join(parts)

    def single(match: re.Match[str]) -> str:
        word = match.group(0)
        elided, apostrophe, rest = (
            re.split(r"(['’])", word, maxsplit=1)
            if ("'" in word or "’" in word)
            else ("", "", word)
        )
        if apostrophe:
            return elided + apostrophe + single_word(rest)
        return single_word(word)

    def single_word(word: str) -> str:
        if len(word) < 5 or word.isupper() or _in_list(word):
            return word
        for i in range(2, len(word) - 1):
            fixed = _rejoined(word[:i], word[i:], known)
            if fixed:
                return fixed
        return word

    return _WORD.sub(single, text)
