"""Rewrite elliptical follow-up questions into standalone ones: the subject of the conversation
carried over, the new ask kept, so retrieval and the answerer both see what is asked about what.

    first = "Quelles sont les étapes pour monter un partenariat ?"
    history = [{"role": "user", "content": first}, {"role": "assistant", "content": "..."}]
    contextualize("et pour une collectivité ?", history)
    # -> "Quelles sont les étapes pour monter un partenariat, pour une collectivité ?"
    contextualize("et concrètement, qui peut y participer ?",
                  [{"role": "user", "content": "Qu'est-ce que l'ODD 17 ?"}])
    # -> "qui peut participer (l'ODD 17) ?"

A follow-up that holds its own question word (qui, quand, combien, comment, who...) keeps its
ask and gets the topic's subject (the topic question without its question words); one without
(« et pour une fondation ? ») keeps the topic's ask and adds the new precision.

Rules, on folded words (French first, a little English):
- no content word at all ("combien ?", "c'est quand ?", "pourquoi ?") -> elliptical;
- only generic content words ("des exemples ?", "plus de détails ?") -> elliptical;
- starts with a continuation ("et", "mais", "ou", "and", "what about"...) or holds "aussi",
  "également", "too", and has at most 3 content words -> elliptical;
- holds a pronoun pointing back ("qui l'a signée ?", "elle date de quand ?", "who signed it?")
  and has at most 2 content words -> elliptical;
- whatever its length, holds a word that can only point back: a subject pronoun opening it
  (« elle prévoyait une expérimentation sur combien de temps ? »), an object pronoun after a
  subject one (« et on l'évalue à quel moment ? »), a demonstrative (« cette charte »), an
  ordinal standing for a noun (« la première ? ») -> elliptical (see ``points_back``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import pairwise

from assistant.text.french import content_words, fold, words


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_LEADS = _wordset("et mais ou sinon puis ensuite idem pareil and but or also")
_LEAD_PAIRS = frozenset({("what", "about"), ("how", "about"), ("meme", "chose")})
_ANYWHERE = _wordset("aussi egalement pareil idem too also either")
_PRONOUNS = _wordset("""
    il elle ils elles lui leur leurs son sa ses celui celle ceux celles cela ca ceci
    y dedans dessus ladessus
    it its they them their this that these those he him his she her
    """)
_AUXILIARIES = _wordset("a ai as avons avez ont avait avaient aura auront est sont etait sera ete")
_CLITICS = frozenset({"l", "le", "la", "les"})
# Impersonal phrases whose "il"/"y" point at nothing: "y a-t-il", "faut-il", "il existe".
_IMPERSONAL = tuple(
    tuple(p.split())
    for p in (
        "y a t il",
        "il y a",
        "y a",
        "il faut",
        "faut il",
        "il existe",
        "existe t il",
        "il s agit",
        "s agit il",
        "il est possible",
        "est il possible",
        "il vaut",
        "vaut il",
        "il suffit",
        "suffit il",
        "il reste",
        "reste t il",
    )
)
_GENERIC = (
    "exemple exemples detail details precision preciser precise plus davantage autre autres "
    "suite continuer developper expliquer explique explication resume resumer lien liens "
    "source sources example examples detail details more explain elaborate tell again"
)
_MAX_WITH_LEAD = 3
_MAX_WITH_PRONOUN = 2


@lru_cache(maxsize=1)
def _generic_stems() -> frozenset[str]:
    return frozenset(content_words(_GENERIC))


def _has_lead(tokens: Sequence[str]) -> bool:
    if not tokens:
        return False
    if tuple(tokens[:2]) in _LEAD_PAIRS:
        return True
    return tokens[0] in _LEADS or bool(_ANYWHERE.intersection(tokens))


def _drop_impersonal(tokens: Sequence[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        phrase = next((p for p in _IMPERSONAL if tuple(tokens[i : i + len(p)]) == p), None)
        if phrase is None:
            out.append(tokens[i])
            i += 1
        else:
            i += len(phrase)
    return out


def _has_pronoun(tokens: Sequence[str]) -> bool:
    tokens = _drop_impersonal(tokens)
    if _PRONOUNS.intersection(tokens):
        return True
    # "qui l'a signée", "qui les a créés": an object clitic right before an auxiliary.
    return any(a in _CLITICS and b in _AUXILIARIES for a, b in pairwise(tokens))


# Words that point back whatever the question's length (on folded text):
# - a subject pronoun opening the question or a clause, or taking up a noun put first
#   (« elle prévoyait… », « et l'association, elle a publié quoi ? »), not an inverted one
#   (« comment une fondation peut-elle… ») nor an impersonal one (« il y a », « il faut »);
# - an object pronoun after a subject one (« on l'évalue quand ? », « elles en ont combien ? »);
# - a demonstrative (« cette charte », « ce bouquin », « cet endroit »);
# - an ordinal standing for a noun (« à la fin de la première ? »).
_NOT_IMPERSONAL = (
    r"(?!\s+(?:y a|y avait|y aura|faut|fallait|existe|s'agit|est (?:possible|utile|necessaire)|"
    r"vaut|suffit|reste|semble|parait)\b)"
)
_SUBJECT = r"(?:il|elle|ils|elles)\b" + _NOT_IMPERSONAL
# opening the question (after « et », « mais »…), or, after one of those, a clause: « et
# l'association, elle… » (without it, « Les associations, elles peuvent… ? » names its subject)
_POINTING_SUBJECT = re.compile(
    rf"^(?:(?:et|mais|ou|donc|alors|puis|concretement|sinon)\b[\s,]*)*{_SUBJECT}"
    rf"|^(?:et|mais|ou|donc|alors|puis|sinon)\b.*[,;:?]\s*{_SUBJECT}"
)
_OBJECT_CLITIC = re.compile(
    r"\b(?:on|je|j'|tu|il|elle|nous|vous|ils|elles)\s+(?:ne\s+|n')?(?:l'|la\s|le\s|les\s|en\s)"
)
_DEMONSTRATIVE = re.compile(
    r"\b(?:cette|cet|ces)\s+\w|\bce\s+(?!(?:que|qu'|qui|dont|n'|sont|soit|sera|serait|"
    r"fut|sera|la|le|les|a|au|aux)\b)[^\W\d_]{3,}"
)
_ORDINAL_PRONOUN = re.compile(
    r"\b(?:le|la|les|du|au|aux)\s+(?:premier|premiere|second|seconde|deuxieme|troisieme|"
    r"dernier|derniere|suivant|suivante|precedent|precedente)s?\s*(?:$|[?!.,;]|"
    r"(?:de|du|des|d'|sur|dans|pour|ou)\b)"
)


def points_back(question: str) -> bool:
    """Whether ``question`` holds a word that stands for something named before (see above)."""
    q = fold(question).replace("’", "'").strip()
    return any(
        p.search(q) for p in (_POINTING_SUBJECT, _OBJECT_CLITIC, _DEMONSTRATIVE, _ORDINAL_PRONOUN)
    )


def is_elliptical(question: str) -> bool:
    """True if ``question`` leans on earlier turns for its topic (see module rules)."""
    tokens = words(question)
    if not tokens:
        return False
    stems = content_words(question)
    if not stems or stems <= _generic_stems():
        return True
    if _has_lead(tokens) and len(stems) <= _MAX_WITH_LEAD:
        return True
    if _has_pronoun(tokens) and len(stems) <= _MAX_WITH_PRONOUN:
        return True
    return points_back(question)


def _user_questions(history: Sequence[Mapping[str, str]]) -> list[str]:
    return [
        str(turn.get("content", "")).strip()
        for turn in history
        if turn.get("role") == "user" and str(turn.get("content", "")).strip()
    ]


_OPENERS = re.compile(
    r"^(?:(?:et|mais|ou|alors|donc|sinon|puis|ensuite|du coup|and|but|so|ok|d'accord)\b[\s,]*"
    r"|(?:concretement|precisement|en pratique|au fait|plus precisement|in practice)\b[\s,]*)+",
)
_ASK_WORDS = _wordset(
    "qui quand combien comment pourquoi quel quelle quels quelles ou quoi que lequel laquelle "
    "lesquels lesquelles who when how why what which where"
)
_TOPIC_ASK = re.compile(
    r"^\s*(?:qu'est[- ]ce (?:que|qu')|c'est quoi|que (?:signifie|veut dire|designe)|"
    r"quel(?:le)?s? (?:est|sont|etait|etaient)|"
    r"qui (?:(?:est|sont|a|ont|avait|avaient|etait)\s+)?(?!(?:le|la|les|l'|un|une|des|du)\b)"
    r"[^\W\d_]+|(?:sur|de|a|avec|pour|par|en) quoi [^\W\d_]+|comment|pourquoi|quand|"
    r"combien d(?:e\s|')|ou\s|parle[- ]moi (?:de|du|des)|what (?:is|are)|who (?:is|are)|"
    r"how (?:do|does|can)|a quoi (?:sert|servent)|(?:tu as|vous avez|avez-vous|as-tu)|"
    r"(?:il )?y a(?:-t-il)?(?: eu)?|existe-t-il|est-ce qu(?:e\s|'))"
    r"\s*",
)
_CLITIC_Y = re.compile(r"\b(?:y|en)\s+(?=\w)")


def _fold_keep(text: str) -> str:
    """Folded text (accents off, lower case) with the same length as ``text``."""
    folded = fold(text)
    return folded if len(folded) == len(text) else text.lower()


def _subject(topic: str) -> str:
    """« Qu'est-ce que l'ODD 17 ? » -> « l'ODD 17 »: the topic without its question words."""
    t = topic.strip().rstrip(" ?!.")
    m = _TOPIC_ASK.match(_fold_keep(t).replace("’", "'"))
    return t[m.end() :].strip() if m and m.end() < len(t) else t


def rewrite(question: str, topic: str) -> str:
    """A standalone question from a follow-up and the topic question it leans on."""
    q = question.strip().rstrip(" ?").strip()
    m = _OPENERS.match(_fold_keep(q).replace("’", "'"))
    ask = q[m.end() :].strip(" ,") if m else q
    # Its own ask (a question word, or a clause of its own: « elle a une valeur juridique,
    # cette charte ? »): kept, the subject carried over; else a precision of the topic's ask.
    if ask and (_ASK_WORDS.intersection(words(ask)) or points_back(ask)):
        ask = _CLITIC_Y.sub("", ask) if "'" not in ask[:3] else ask
        return f"{ask} ({_subject(topic)}) ?"
    base = topic.strip().rstrip(" ?").strip()
    return f"{base}, {ask} ?" if ask else f"{base} ?"


_CARRIED = re.compile(r"^(?P<ask>.+?)\s+\((?P<subject>[^()]+)\)\s*\?$")


def asked_part(query: str) -> str:
    """The new ask of a rewritten follow-up (« qui peut participer (l'ODD 17) ? » -> « qui
    peut participer ? »): what kind of answer is wanted is read there, not in the subject
    carried over; any other question is returned as it is."""
    m = _CARRIED.match(query.strip())
    return f"{m.group('ask')} ?" if m else query


def contextualize(
    question: str, history: Sequence[Mapping[str, str]], max_chars: int | None = None
) -> str:
    """``question`` unchanged if self-contained, else rewritten with the topic (see ``rewrite``);
    past ``max_chars`` the topic is cut (not mid-word) before the question.

    The topic is the latest self-contained user question (so "et pour une fondation ?" after
    "et pour une collectivité ?" still reaches back to the real topic); if every earlier user
    turn is elliptical, the latest one is used. A history ending with the question itself is
    tolerated. With ``max_chars``, the topic is cut (at a word) so that the completed query
    fits: the length limit is the question's, not the question's plus its history's.
    """
    if not is_elliptical(question):
        return question
    asked = _user_questions(history)
    if asked and asked[-1] == question.strip():
        asked = asked[:-1]
    if not asked:
        return question
    anchor = next((q for q in reversed(asked) if not is_elliptical(q)), asked[-1])
    standalone = rewrite(question, anchor)
    if max_chars is None or len(standalone) <= max_chars:
        return standalone
    asked_now = " ".join(question.split())
    anchor = " ".join(anchor.split())
    if max_chars is not None and len(anchor) + 1 + len(asked_now) > max_chars:
        room = max_chars - 1 - len(asked_now)
        if room <= 0:
            return question  # the question alone is at (or over) the limit: it says so
        cut = anchor[:room]
        if anchor[room] != " " and " " in cut:  # not mid-word
            cut = cut.rsplit(" ", 1)[0]
        anchor = cut
    return f"{anchor} {asked_now}"
