"""French-aware text normalisation for lexical matching (BM25, overlap scores, fact checks).

Accents are folded *before* stemming so that "collectivités" and "collectivites" give the same
stem: users type without accents far more often than the corpus does, and a consistent stem
matters more for matching than a linguistically perfect one.

    >>> tokenize("L'alliance des territoires")
    ['allianc', 'territoir']
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

# Bump when tokenize() changes output: persisted lexical indexes record it and must be rebuilt.
TOKENIZER_VERSION = "fr-1"

_SPECIALS = str.maketrans(
    {
        **dict.fromkeys("’‘ʼ`´′", "'"),
        **{"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"},
    }
)
_SPECIAL_CHARS = re.compile("[’‘ʼ`´′œŒæÆß]")
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# Elided words: "l'alliance", "qu'est-ce", "jusqu'au". The lookbehind keeps "aujourd'hui" whole.
_ELISION = re.compile(
    r"(?<![^\W\d_])(jusqu|lorsqu|puisqu|quoiqu|presqu|qu|[ldjnscmt])['’‘ʼ]",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_]+")
_HYPHENATED = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
_LETTERS_DIGITS = re.compile(r"[^\W\d_]+|\d+")


# Folded forms (no accents). Elided forms (l, d, qu...) are listed: split_elisions leaves them.
def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


FRENCH_STOPWORDS: frozenset[str] = _wordset(
    """
    a ai aie aient aies ait as au aura aurai auraient aurais aurait auras aurez auriez aurions
    aurons auront aux avaient avais avait avec avez aviez avions avoir avons ayant ayez ayons
    c ca ce ceci cela celle celles celui ceux cet cette ces chaque chez ci comme comment combien
    d dans de des deja depuis devrait doit doivent donc dont du
    elle elles en encore entre es est et etaient etais etait etant ete etes etiez etions etre eu
    eue eues eumes eurent eus eusse eussent eusses eussiez eussions eut eutes eux
    fais fait faut fumes furent fus fusse fussent fusses fussiez fussions fut futes
    ici il ils j je jusqu l la le les leur leurs lorsqu lui
    m ma mais me meme memes mes moi mon
    n ne ni nos notre nous on ont ou oui par parce pas peu peut peuvent plus pour pourquoi
    pouvez pourrait puis puisqu puisque qu quand que quel quelle quelles quels qui quoi quoiqu
    s sa sans se sera serai seraient serais serait seras serez seriez serions serons seront
    ses si soi soient sois soit sommes son sont soyez soyons suis sur
    t ta te tes toi ton tous tout toute toutes tres tu
    un une unes uns vers voici voila vos votre vous y
    afin ainsi alors aupres aussi autre autres avant apres bien car cependant certains
    certaines dois dit donne donner faire lequel laquelle lesquels lesquelles ledit ladite
    lors moins non notamment parmi plusieurs presqu quelque quelques sinon selon sous tant tel
    telle telles tels toujours aujourd hui
    """
)

# A few English function words so English questions do not match on "the"/"what".
# Words that are also French content words ("an", "son", "or" as "gold"...) are left out.
_ENGLISH_STOPWORDS: frozenset[str] = _wordset(
    """
    the of and to in is are was were be been being it its this that these those for with
    what which who whom whose how why when where do does did can could should would will
    shall may might must i me my we our us you your he him his she her they them their
    about from by at into than then there here have has had having not no yes if so any
    all some more most other such only also just
    """
)

_DROP: frozenset[str] = FRENCH_STOPWORDS | _ENGLISH_STOPWORDS


# French number words from two to sixteen (« un »/« une » left out: they are articles far more
# often), for the answerer's « les six étapes » and the eval's « cinq » = « 5 ».
FRENCH_NUMBERS: dict[str, int] = {
    "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7, "huit": 8, "neuf": 9,
    "dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16,
}  # fmt: skip


def fold(text: str) -> str:
    """Lowercase, fold accents and ligatures (é->e, œ->oe) and unify apostrophes to '."""
    if _SPECIAL_CHARS.search(text):
        text = text.translate(_SPECIALS)
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text)).lower()


def split_elisions(text: str) -> str:
    """Detach elided words: "l'alliance" -> "l alliance", "jusqu’au" -> "jusqu au"."""
    return _ELISION.sub(r"\1 ", text)


def words(text: str) -> list[str]:
    """Folded words with elisions split, nothing dropped or stemmed ("qui l'a" -> qui, l, a)."""
    return _WORD.findall(split_elisions(fold(text)))


@lru_cache(maxsize=262_144)
def _stem(word: str) -> str:
    """Snowball French on folded text, patched where folding hurts it.

    Snowball leaves short plurals ("elus") and folded "-ee" participles ("signee") alone; we
    strip a final "s" first and final "e"s after, so élu/élus/élue and signé/signée meet.
    """
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    # A fresh stemmer per miss: snowball stemmers keep state and are not thread-safe.
    stem: str = snowballstemmer.stemmer("french").stemWord(word)
    while len(stem) > 2 and stem.endswith("e"):
        stem = stem[:-1]
    return stem


def _expand(text: str) -> list[str]:
    """Words plus helpful variants: "odd17" -> odd17, odd, 17; "co-construction" -> ..."""
    folded = split_elisions(fold(text))
    joined = (
        {m.group(0): m.group(0).replace("-", "") for m in _HYPHENATED.finditer(folded)}
        if "-" in folded
        else {}
    )
    out: list[str] = []
    for word in _WORD.findall(folded):
        out.append(word)
        if word.isalpha() or word.isdecimal():
            continue  # all letters or all digits: one part (the test below, without a regex)
        parts = _LETTERS_DIGITS.findall(word)
        if len(parts) > 1:  # letters and digits mixed: "odd17" must meet "ODD 17"
            out.extend(parts)
    for compound, glued in joined.items():
        parts = compound.split("-")
        if not any(p in _DROP for p in parts):  # "co-construction" must meet "coconstruction"
            out.append(glued)
    return out


def tokenize(text: str) -> list[str]:
    """Stemmed content tokens for lexical matching; deterministic, same for corpus and query.

    Folds accents, splits elisions, drops French (and common English) stopwords, keeps numbers
    as they are ("ODD 17" -> ["odd", "17"]) and drops other tokens shorter than two characters.
    """
    tokens: list[str] = []
    for word in _expand(text):
        if word.isdigit():
            tokens.append(word)
        elif len(word) >= 2 and word not in _DROP:
            tokens.append(_stem(word))
    return tokens


def content_words(text: str) -> set[str]:
    """The set of stems of ``tokenize(text)``, for overlap scoring."""
    return set(tokenize(text))
