"""When to decline: pure rules that judge whether retrieved evidence can answer a question.

Similarity alone cannot tell « Quel est le numéro de téléphone du RAMEAU ? » (on topic, absent
from the corpus) from a real question: both retrieve close passages. So besides a similarity
floor (lower for English questions, which match French passages less closely), the assistant
declines when the question hinges on something the evidence lacks:

- most of its terms occur nowhere in the corpus (``unknown_share``: « tarte tatin »);
- the kind of answer asked for (``expected_kind``: an amount, a phone number, a percentage, a
  number) is absent from the sentences it would quote;
- a proper name or acronym of the question (``named_entities``) is absent from the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from assistant.text.french import fold, tokenize
from assistant.text.structure import LIST_ITEMS

_EN_WORDS = frozenset(
    [
        "the",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "when",
        "where",
        "why",
        "is",
        "are",
        "was",
        "were",
        "does",
        "did",
        "do",
        "of",
        "for",
        "to",
        "in",
        "and",
        "or",
        "with",
        "can",
        "should",
        "would",
        "could",
        "there",
        "their",
        "this",
        "that",
        "these",
        "those",
        "my",
        "our",
        "your",
        "an",
        "a",
        "many",
        "much",
        "about",
    ]
)
_FR_WORDS = frozenset(
    [
        "le",
        "la",
        "les",
        "des",
        "du",
        "de",
        "un",
        "une",
        "et",
        "ou",
        "est",
        "sont",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "comment",
        "combien",
        "qui",
        "quoi",
        "pourquoi",
        "quand",
        "ou",
        "dans",
        "pour",
        "avec",
        "sur",
        "au",
        "aux",
        "ce",
        "cette",
        "ces",
        "mon",
        "ma",
        "mes",
        "son",
        "sa",
        "ses",
        "c",
        "est",
        "qu",
        "elle",
        "il",
        "ils",
        "elles",
        "on",
    ]
)

_NUMBER_WORDS = (
    r"deux|trois|quatre|cinq|six|sept|huit|neuf|dix|onze|douze|quinze|vingt|trente|"
    r"quarante|cinquante|cent|cents|mille|million|millions|milliard|milliards|dizaine|"
    r"douzaine|vingtaine|trentaine|quarantaine|cinquantaine|centaine|moitie|tiers|quart"
)
_HAS_NUMBER = re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b")
_HAS_AMOUNT = re.compile(r"€|\beuros?\b|\bm€|\bk€|\bmillions? d'euros|\bdollars?\b|\$")
_HAS_PERCENT = re.compile(r"%|\bpour ?cent\b|\bpourcentage\b|\bpercent\b")
_HAS_PHONE = re.compile(r"(?:\+33|\b0)[1-9](?:[ .-]?\d{2}){4}\b")

# Question patterns, on folded text (no accents, lowercase).
_ASKS_PHONE = re.compile(r"\b(?:telephone|phone|numero de tel)\b")
_ASKS_AMOUNT = re.compile(
    r"\b(?:montant|budget|combien d'argent|salaire|prix|cout|coute|coutent|tarif|subvention|"
    r"dote de combien|dotee? de combien|dotation|enveloppe|"
    r"combien .*(?:verse|paye|donne|finance|coute|rapporte)|how much (?:money|did|does)|"
    r"cost|salary)\b"
)
_ASKS_PERCENT = re.compile(
    r"\b(?:pourcentage|taux|quelle part|quelle proportion|share of|percent)\b"
)
_ASKS_NUMBER = re.compile(r"\b(?:combien|nombre de|how many|how much)\b")
# « sur combien de temps », « en combien de temps », « pour quelle durée », « how long »: a
# length of time (« trois mois », « 3 ans »). « depuis combien de temps » may be answered by a
# start date, so it stays a number question.
_ASKS_DURATION = re.compile(
    r"\b(?<!depuis )(?:combien de temps|combien d'(?:annees|ans)|"
    r"combien de (?:mois|semaines|jours)|quelle duree|pour quelle duree|sur quelle duree|"
    r"how long|for how many (?:years|months|weeks))\b"
)
_EN_NUMBERS = r"one|two|three|four|five|six|seven|eight|nine|ten|twelve|eighteen|few|several"
_TIME_UNITS = r"ans?|annees?|mois|semaines?|jours?|heures?|years?|months?|weeks?|days?|hours?"
_HAS_DURATION = re.compile(
    rf"(?:\d+(?:[,.]\d+)?|\b(?:un|une|{_NUMBER_WORDS}|quelques|plusieurs|{_EN_NUMBERS}))[ -]+"
    rf"(?:[a-z]+[ -]+)?(?:{_TIME_UNITS})\b"
)
_ASKS_HOURS = re.compile(r"\b(?:horaires?|heures? d'ouverture|opening hours|open(?:ing)? times?)\b")
_HAS_HOURS = re.compile(r"\b\d{1,2} ?h(?: ?\d{2})?\b|\b\d{1,2}:\d{2}\b|\b\d{1,2} ?(?:am|pm)\b")
_ASKS_DATE = re.compile(
    r"\b(?:quand|a quelle date|quelle date|en quelle annee|quelle annee|depuis quand|"
    r"jusqu'a quand|date limite|when|what year|what date)\b"
)
_MONTHS = (
    r"janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|decembre|"
    r"january|february|march|april|may|june|july|august|september|october|november|december"
)
# « 2020 », « le 7 mai », « fin novembre », « mi-mars », « au printemps », « chaque année »
_HAS_DATE = re.compile(
    rf"\b(?:1[89]\d\d|20\d\d)\b|\b(?:{_MONTHS})\b|\b(?:printemps|ete|automne|hiver|"
    r"trimestre|semestre|annuel(?:le)?(?:ment)?|chaque annee|tous les ans|au plus tard|"
    r"avant le|apres le|des le|depuis le)\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
)

Kind = str  # "phone" | "hours" | "amount" | "percent" | "duration" | "number" | "date"


def is_english(question: str) -> bool:
    """A light language guess for questions: more English than French function words."""
    words = re.findall(r"[a-z]+", fold(question))
    en = sum(w in _EN_WORDS for w in words)
    fr = sum(w in _FR_WORDS for w in words)
    return en >= 2 and en > fr


# « quand » joining two clauses (« les étapes … quand on est une association ») asks no date:
# it does when it opens the question, ends it (« c'est prévu quand ? ») or is « quand est-ce ».
_WHEN_CONJUNCTION = re.compile(
    r"\b(?!(?:depuis|jusqu|a|pour|de)\b)(\w+)[ ,]+(?:quand|lorsqu(?:e|'))\s+"
    r"(?!est-ce\b)(?=\w+\W+\w)"
)


def expected_kind(question: str) -> Kind | None:
    """What kind of value the question asks for, if it asks for a value at all."""
    q = _WHEN_CONJUNCTION.sub(r"\1 ; ", fold(question).replace("’", "'"))
    if _ASKS_PHONE.search(q):
        return "phone"
    if _ASKS_HOURS.search(q.replace("’", "'")):
        return "hours"
    if _ASKS_AMOUNT.search(q):
        return "amount"
    if _ASKS_PERCENT.search(q):
        return "percent"
    if _ASKS_DURATION.search(q):
        return "duration"
    if _ASKS_NUMBER.search(q):
        return "number"
    if _ASKS_DATE.search(q):
        return "date"
    return None


QuestionType = str  # "list" | "definition" | "who" | "value" | "other"

# Cue words, on folded text. A list or steps question: « quelles sont les… », « quels
# sont… », « les étapes », « par où commencer », « comment … étape par étape », « liste »,
# « what are the », « steps », « how do I start ».
_ASKS_LIST = re.compile(
    r"^(?:et )?(?:quel(?:le)?s |lesquel)|"
    r"\b(?:etapes?|par ou commencer|comment (?:[\w'-]+ ){0,4}?(?:commenc|demarr|debut|lanc|"
    r"s'y prend|faire pour|proced|mont(?:e|er|es|ent|ez|ons)\b|mettre en place|met en place|"
    r"construi|financ|evalu|choisi)\w*|"
    r"(?:que|quoi) (?:mettre|inclure|prevoir|faut-il prevoir|contient|doit contenir)|"
    r"liste|lister|enumere|quels sont|quelles sont|les principaux|les principales|conditions|"
    r"modes|leviers|criteres|outils|moyens|piliers|engagements|what are|which are|steps|"
    r"how (?:do|can|should) (?:i|we) (?:start|begin|set up|build|fund|finance))\b"
)
_ASKS_DEFINITION = re.compile(
    r"\b(?:qu'est[- ]ce (?:que|qu)|c'est quoi|que (?:signifie|veut dire|designe)|"
    r"definition|definir|ca veut dire|what is|what's|what does .* mean|define)\b"
)
_ASKS_WHO = re.compile(r"^(?:et )?(?:qui|who)\b|\b(?:par qui|aupres de qui|with whom|who)\b")


def question_type(question: str) -> QuestionType:
    """What is asked, from cue words: a list (or steps), a definition, a person or body
    (« qui »), a value (an amount, a number, a date: see ``expected_kind``), or other."""
    q = fold(question).replace("’", "'").strip(' ¿?«»"')
    if expected_kind(question) is not None:
        return "value"
    if _ASKS_DEFINITION.search(q):
        return "definition"
    if _ASKS_WHO.search(q):
        return "who"
    if _ASKS_LIST.search(q):
        return "list"
    return "other"


_COUNT_OF = re.compile(r"\b(?:combien d(?:e |')|nombre d(?:e |')|how many )([a-z]+)")


_NOT_COUNTED = frozenset({"temps", "fois", "argent", "euros", "jours", "annees", "ans", "mois"})


def counted_noun(question: str) -> str | None:
    """The noun a French « combien de X » question counts (folded), if any; None for English
    questions (their noun is not in the French text) and for nouns of time or money."""
    if is_english(question):
        return None
    m = _COUNT_OF.search(fold(question).replace("’", "'"))
    if not m or m.group(1) in _NOT_COUNTED:
        return None
    return m.group(1)


_IN_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_])")


def counts(noun: str, text: str) -> bool:
    """Whether ``text`` gives a number of ``noun`` (« une trentaine de projets », « 6 articles »):
    a number followed within three words of the same clause (no « ; », « : » or « — » between:
    the cells of a table row are clauses) by a word sharing the noun's first five letters."""
    t = _IN_WORD_HYPHEN.sub("", LIST_ITEMS.sub("", fold(text)))  # « co-fondateurs »
    stem = _IN_WORD_HYPHEN.sub("", noun)[:5]
    gap = r"[^\w;:|—]+"
    pattern = rf"(?:\d[\d  .,]*|\b(?:{_NUMBER_WORDS})\b)(?:{gap}\w+){{0,3}}?{gap}{re.escape(stem)}"
    return bool(re.search(pattern, t))


def satisfies(kind: Kind | None, text: str) -> bool:
    """Whether ``text`` holds a value of the expected kind (a percentage also answers
    "combien", any number answers "combien"; an amount needs a currency)."""
    if kind is None:
        return True
    t = fold(text)
    if kind == "phone":
        return bool(_HAS_PHONE.search(t))
    if kind == "amount":
        return bool(_HAS_AMOUNT.search(t))
    if kind == "percent":
        return bool(_HAS_PERCENT.search(t))
    if kind == "date":
        return bool(_HAS_DATE.search(t))
    if kind == "hours":
        return bool(_HAS_HOURS.search(t))
    if kind == "duration":
        return bool(_HAS_DURATION.search(t))
    return bool(_HAS_NUMBER.search(LIST_ITEMS.sub("", t)))


def unknown_share(
    question: str,
    document_frequency: Callable[[str], int],
    is_french_word: Callable[[str], bool] | None = None,
) -> tuple[float, list[str]]:
    """Share of a question's content terms that occur in no chunk of the corpus, and those
    terms. One unknown word says little (« asso », « bouquin », a rare verb form); most of the
    question unknown (« recette de la tarte tatin ») says it is outside the corpus.

    An English question's words are mostly absent from a French corpus whatever it asks, so only
    the words French has too are weighed (``is_french_word``: « train », « marathon »,
    « football », « alliance », « modes »), and only when none of them occurs anywhere: the French
    word list also holds many English words (« business », « four », « goals »), so one absent
    word, or a few beside any word the corpus has, says nothing. Without ``is_french_word`` English
    questions are not judged this way."""
    if is_english(question):
        if is_french_word is None:
            return 0.0, []
        return _english_unknown(question, document_frequency, is_french_word)
    terms = tokenize(question)
    if not terms:
        return 0.0, []
    unknown = [t for t in terms if document_frequency(t) == 0]
    return len(unknown) / len(terms), unknown


_EN_CONTENT = re.compile(r"[a-z]{4,}")


def _english_unknown(
    question: str, document_frequency: Callable[[str], int], is_french_word: Callable[[str], bool]
) -> tuple[float, list[str]]:
    words = [w for w in dict.fromkeys(_EN_CONTENT.findall(fold(question))) if w not in _EN_WORDS]
    stems = {w: tokenize(w) for w in words}
    if any(document_frequency(t) for w in words for t in stems[w]):
        return 0.0, []  # a word of the corpus (French or a name): the list need not be read
    terms = [t for w in words if is_french_word(w) for t in stems[w]]
    if len(terms) < 2:
        return 0.0, []
    return 1.0, terms


_ENTITY = re.compile(r"\b(?:[A-Z]{2,}[A-Za-z0-9]*|[A-ZÀ-Ý][a-zà-ÿ]+(?:[-'][A-ZÀ-Ý][a-zà-ÿ]+)*)\b")


_SENTENCE_START = re.compile(r"(?:^|[.!?:;…]\s+)[\s«\"'(¿]*$")


def named_entities(question: str) -> list[str]:
    """Acronyms and capitalised names that do not open a sentence of the question
    (« RNMA », « Belgique », « Mbappé »), folded: in « … ? Quelles sont les étapes ? » the
    second « Quelles » is capitalised as a sentence start, not as a name. In English questions
    only acronyms count: capitalised English words (« French ») would not appear in a French
    corpus anyway."""
    english = is_english(question)
    out: list[str] = []
    for m in _ENTITY.finditer(question):
        token = m.group(0)
        opens = bool(_SENTENCE_START.search(question[: m.start()]))
        if len(token) < 3 or (opens and not token.isupper()):  # a sentence start
            continue
        if english and not token.isupper():
            continue
        out.append(fold(token))
    return out


_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_DOTTED_LETTER = re.compile(r"\b([a-z])\.")


def missing_entities(question: str, evidence: Iterable[str]) -> list[str]:
    """Names, acronyms and years of the question that the evidence never mentions (« pour
    2025 » when the passages only know 2020-2022)."""
    asked = [*named_entities(question), *_YEAR.findall(question)]
    if not asked:
        return []  # nothing to look for: the evidence is not read
    text = " ".join(fold(e) for e in evidence)
    text += " " + _DOTTED_LETTER.sub(r"\1", text)  # « M.E.D.O.C. » names « MEDOC »
    return [e for e in asked if e not in text]


@dataclass(frozen=True)
class Verdict:
    """Why the assistant answers or declines (kept for logs and tuning)."""

    answer: bool
    reason: str


def judge(
    question: str,
    similarity: float,
    threshold_fr: float,
    threshold_en: float,
    unknown: Sequence[str],
    unknown_fraction: float,
    kind: Kind | None,
    kind_found: bool,
    missing: Sequence[str],
    max_unknown_share: float = 0.4,
) -> Verdict:
    """Combine the signals above into one decision, most decisive first."""
    english = is_english(question)
    floor = threshold_en if english else threshold_fr
    if similarity < floor:
        return Verdict(False, f"similarité {similarity:.3f} < {floor:.3f}")
    if len(unknown) >= 2 and unknown_fraction >= max_unknown_share:
        return Verdict(False, f"hors du corpus : {', '.join(unknown)}")
    if kind is not None and not kind_found:
        return Verdict(False, f"aucune valeur de type {kind} dans les passages")
    if missing:
        return Verdict(False, f"absents des passages : {', '.join(missing)}")
    return Verdict(True, "ok")
