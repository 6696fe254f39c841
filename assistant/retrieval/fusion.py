"""Pure helpers to merge and tidy ranked lists: weighted RRF, near-duplicate removal, min-max.

rrf([["a", "b"], ["b", "c"]])        # b first: it is in both lists
near_duplicates(["same text", "same text", "other"])   # -> [1]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from assistant.text.french import fold

_SHINGLE = 5
_WORD = re.compile(r"[^\W_]+")


def rrf(
    rankings: Sequence[Sequence[str]],
    weights: Sequence[float] | None = None,
    k: int = 60,
) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion: ``score(id) = sum_i w_i / (k + rank_i(id))``.

    Ranks are 1-based; an id repeated within one ranking counts at its best rank. Rankings of
    weight 0 are ignored. Ties go to the best single rank, then to the smaller id.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(
            f"weights has {len(weights)} values for {len(rankings)} rankings: "
            "give one weight per ranking"
        )
    for w in weights:
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"weights must be finite and >= 0, got {w!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if isinstance(ranking, str):
            raise ValueError(f"each ranking must be a sequence of ids, got the string {ranking!r}")
        if weight == 0:
            continue
        seen: set[str] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            best = best_rank.get(item)
            if best is None:
                scores[item] = weight / (k + rank)
                best_rank[item] = rank
            else:
                scores[item] += weight / (k + rank)
                if rank < best:
                    best_rank[item] = rank
    # Rounding makes sums that differ only by float addition order count as ties.
    ordered = sorted(scores, key=lambda i: (-round(scores[i], 12), best_rank[i], i))
    return [(i, scores[i]) for i in ordered]


def shingles(text: str) -> frozenset[int]:
    """Word 5-shingles of the folded text (as hashes: set operations on ints are several times
    faster than on tuples of strings); shorter texts give their whole word tuple."""
    tokens = _WORD.findall(fold(text))
    if len(tokens) < _SHINGLE:
        return frozenset((hash(tuple(tokens)),))
    # the 5-word windows as zip builds them: no slice per window
    return frozenset(map(hash, zip(*(tokens[i:] for i in range(_SHINGLE)), strict=False)))


Mark = tuple[int, int]
"""A shingle set's ``mark``: its bits (bit ``h % 1024`` set for each shingle hash ``h``) and
its size."""


def mark(these: frozenset[int]) -> Mark:
    """The ``Mark`` of a shingle set (``shingles``)."""
    bits = 0
    for h in these:
        bits |= 1 << (h & 1023)
    return bits, len(these)


def _may_be_near(a: Mark, b: Mark, threshold: float) -> bool:
    """False only if the two shingle sets cannot have a Jaccard of ``threshold`` or more.

    A bit set in one mark and not the other comes from a shingle of one set only, so the bits
    that differ are at most the symmetric difference D; and Jaccard >= t means
    D <= (1 - t) / (1 + t) * (|A| + |B|). One more bit of slack covers float rounding."""
    return (a[0] ^ b[0]).bit_count() <= (1.0 - threshold) / (1.0 + threshold) * (a[1] + b[1]) + 1


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    inter = len(a & b)
    union = len(a) + len(b) - inter
    return inter / union if union else 1.0


def near_duplicates(
    texts: Sequence[str],
    threshold: float = 0.85,
    keep: int | None = None,
    shingles_of: Callable[[str], frozenset[int]] = shingles,
    mark_of: Callable[[str], Mark | None] | None = None,
) -> list[int]:
    """Indices to drop: items whose shingle Jaccard with an earlier *kept* item is >= threshold.

    Texts are compared after accent folding and lowercasing, ignoring punctuation, so the same
    paragraph seen in a PDF and in its HTML twin is dropped once. Quadratic: meant for n <= 100.
    With ``keep``, stops once that many are kept and drops every later item unread (a search
    wants its k best: this was 18 % of a search's time when all 30 candidates were compared).
    ``shingles_of`` gives a text's shingles (``shingles``; a searcher passes its cache).
    ``mark_of`` gives a text's ``Mark`` if known (a searcher keeps those of its chunks): two
    texts whose marks differ too much are not near-duplicates, and their shingles are not read
    (~70 us a text of 700 characters; same drops).
    """
    if not (0.0 < threshold <= 1.0) or math.isnan(threshold):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if mark_of is not None:
        return _near_duplicates_marked(texts, threshold, keep, shingles_of, mark_of)
    kept: list[frozenset[int]] = []
    drop: list[int] = []
    for index, text in enumerate(texts):
        if keep is not None and len(kept) >= keep:
            drop.extend(range(index, len(texts)))
            break
        these = shingles_of(text)
        if any(_jaccard(these, other) >= threshold for other in kept):
            drop.append(index)
        else:
            kept.append(these)
    return drop


def _near_duplicates_marked(
    texts: Sequence[str],
    threshold: float,
    keep: int | None,
    shingles_of: Callable[[str], frozenset[int]],
    mark_of: Callable[[str], Mark | None],
) -> list[int]:
    """``near_duplicates``, comparing shingles only of pairs whose marks may be near."""
    kept: list[tuple[str, Mark]] = []
    drop: list[int] = []
    for index, text in enumerate(texts):
        if keep is not None and len(kept) >= keep:
            drop.extend(range(index, len(texts)))
            break
        these = mark_of(text) or mark(shingles_of(text))
        if any(
            _may_be_near(these, other, threshold)
            and _jaccard(shingles_of(text), shingles_of(seen)) >= threshold
            for seen, other in kept
        ):
            drop.append(index)
        else:
            kept.append((text, these))
    return drop


def minmax(scores: Sequence[float]) -> list[float]:
    """Rescale scores to [0, 1] (max -> 1, min -> 0); all-equal scores all become 1.0."""
    values = [float(s) for s in scores]
    for s in values:
        if not math.isfinite(s):
            raise ValueError(f"scores must be finite, got {s!r}")
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    span = high - low
    return [(s - low) / span for s in values]
