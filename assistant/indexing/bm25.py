"""A persisted BM25 index over chunk ids, tokenised with ``assistant.text.french.tokenize``.

bm25s computes and stores the sparse score matrix; we keep the id list, feed it our own tokens
(so query and corpus are tokenised identically) and do top-k ourselves so that a caller's
filter (``allowed``, e.g. a document kind) applies before the cut to ``k``.

    index = BM25Index.build(ids, texts)
    index.save(Path("index/bm25"))
    BM25Index.load(Path("index/bm25")).search("faire alliance avec une collectivité", k=10)
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.errors import IndexNotReadyError, QueryError
from assistant.text.french import TOKENIZER_VERSION, tokenize

if TYPE_CHECKING:  # bm25s (and scipy.sparse, ~0.6 s) load with the first index built or read
    import bm25s

logger = logging.getLogger(__name__)

_FORMAT = 1
_MANIFEST = "manifest.json"
_IDS = "ids.json"
_MODEL = "model"


class BM25Index:
    """Lexical index: ``search`` returns ``(chunk_id, score)`` best first, scores > 0 only."""

    def __init__(self, ids: Sequence[str], model: bm25s.BM25 | None) -> None:
        """Wrap a built bm25s model; use :meth:`build` or :meth:`load` rather than this."""
        self._ids = list(ids)
        self._model = model  # None when no document has a single token

    @classmethod
    def build(cls, ids: Sequence[str], texts: Sequence[str]) -> BM25Index:
        """Index ``texts`` under ``ids`` (same length, ids unique)."""
        if len(ids) != len(texts):
            raise ValueError(f"ids and texts differ in length: {len(ids)} != {len(texts)}")
        dups = sorted(i for i, n in Counter(ids).items() if n > 1)
        if dups:
            raise ValueError(f"duplicate chunk ids: {dups[:5]!r}")
        corpus_tokens = [tokenize(t) for t in texts]
        if not any(corpus_tokens):
            return cls(ids, None)
        model = _bm25s().BM25()
        model.index(corpus_tokens, show_progress=False)
        logger.debug("BM25 index built: %d chunks, %d terms", len(ids), len(model.vocab_dict))
        return cls(ids, model)

    def __len__(self) -> int:
        return len(self._ids)

    def document_frequency(self, token: str) -> int:
        """In how many chunks a (tokenized, stemmed) term occurs; 0 if never."""
        if self._model is None:
            return 0
        tid = self._model.vocab_dict.get(token)
        if tid is None:
            return 0
        indptr = self._model.scores["indptr"]
        return int(indptr[tid + 1] - indptr[tid])

    def search(
        self, query: str, k: int, allowed: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """Top ``k`` chunks for ``query`` among those ``allowed`` accepts (all if None)."""
        if k < 1:
            raise QueryError(f"k must be at least 1, got {k}")
        if self._model is None:
            return []
        vocab = self._model.vocab_dict
        token_ids = sorted({vocab[t] for t in tokenize(query) if t in vocab})
        if not token_ids:
            return []
        scores = np.asarray(self._model.get_scores_from_ids(token_ids))
        return self._top(scores, k, allowed)

    def _top(
        self, scores: np.ndarray, k: int, allowed: Callable[[str], bool] | None
    ) -> list[tuple[str, float]]:
        """Best-first positive scores, ties by index order; filter before cutting to k."""
        candidates = np.flatnonzero(scores > 0)
        want = k if allowed is None else max(4 * k, 64)
        while True:
            if len(candidates) > want:
                # Everything at least as good as the want-th score, so ties are all kept.
                threshold = np.partition(scores[candidates], len(candidates) - want)[
                    len(candidates) - want
                ]
                head = candidates[scores[candidates] >= threshold]
            else:
                head = candidates
            order = head[np.lexsort((head, -scores[head]))]
            out: list[tuple[str, float]] = []
            for i in order:
                chunk_id = self._ids[int(i)]
                if allowed is None or allowed(chunk_id):
                    out.append((chunk_id, float(scores[i])))
                    if len(out) == k:
                        return out
            if len(head) == len(candidates):
                return out
            want *= 8  # the filter rejected too many: look deeper

    def save(self, directory: Path) -> None:
        """Write the index to ``directory`` atomically: a temp folder renamed into place."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex}"
        try:
            tmp.mkdir()
            if self._model is not None:
                self._model.save(str(tmp / _MODEL), show_progress=False)
            (tmp / _IDS).write_text(json.dumps(self._ids, ensure_ascii=False), encoding="utf-8")
            manifest = {
                "format": _FORMAT,
                "tokenizer": TOKENIZER_VERSION,
                "count": len(self._ids),
                "has_model": self._model is not None,
            }
            # Written last: a folder without a manifest is never taken for an index.
            (tmp / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
            _swap_in(tmp, directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        """Read an index saved by :meth:`save`; IndexNotReadyError if missing, stale or corrupt."""
        directory = Path(directory)
        try:
            manifest: dict[str, Any] = json.loads((directory / _MANIFEST).read_text("utf-8"))
        except FileNotFoundError as exc:
            raise IndexNotReadyError(f"no BM25 index in {directory}: run a refresh") from exc
        except (OSError, ValueError) as exc:
            raise IndexNotReadyError(f"BM25 index manifest unreadable in {directory}") from exc
        if manifest.get("format") != _FORMAT or manifest.get("tokenizer") != TOKENIZER_VERSION:
            raise IndexNotReadyError(
                f"BM25 index in {directory} was built by another version "
                f"(format {manifest.get('format')}, tokenizer {manifest.get('tokenizer')}): "
                "run a refresh"
            )
        try:
            ids = json.loads((directory / _IDS).read_text("utf-8"))
            model = None
            if manifest.get("has_model"):
                model = _bm25s().BM25.load(str(directory / _MODEL), show_progress=False)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexNotReadyError(f"BM25 index in {directory} is corrupt: {exc}") from exc
        if not isinstance(ids, list) or len(ids) != manifest.get("count"):
            raise IndexNotReadyError(f"BM25 index in {directory} is corrupt: id count mismatch")
        if model is not None and _model_size(model) != len(ids):
            raise IndexNotReadyError(f"BM25 index in {directory} is corrupt: size mismatch")
        return cls([str(i) for i in ids], model)


def _bm25s() -> ModuleType:
    """bm25s, imported on first use (a no-change refresh never needs it). It sets its logger to
    DEBUG as it loads, which would let its records through any root level: it gets ours."""
    first = "bm25s" not in sys.modules
    import bm25s

    if first:
        logging.getLogger("bm25s").setLevel(logger.getEffectiveLevel())
    return bm25s


def _model_size(model: bm25s.BM25) -> int:
    """Number of documents the stored matrix covers, checked against its arrays."""
    scores = model.scores
    num_docs = int(scores["num_docs"])
    indptr, indices, data = scores["indptr"], scores["indices"], scores["data"]
    terms = len(model.vocab_dict) - ("" in model.vocab_dict)  # bm25s adds "" with no column
    if len(indptr) != terms + 1 or len(indices) != len(data):
        return -1
    if len(indices) and (int(indices.max()) >= num_docs or int(indptr[-1]) != len(data)):
        return -1
    return num_docs


def _swap_in(tmp: Path, directory: Path) -> None:
    """Rename ``tmp`` to ``directory``, moving any previous index aside and then deleting it."""
    old = None
    if directory.exists():
        old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex}"
        directory.rename(old)
    try:
        tmp.rename(directory)
    except OSError:
        if old is not None:
            old.rename(directory)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
