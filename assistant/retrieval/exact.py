"""An exact nearest-neighbour scan over an in-memory copy of a small collection's vectors.

Up to ``EXACT_MAX`` chunks, one matrix product finds the nearest chunks faster than asking
Chroma, whose HNSW query has a fixed cost (measured on 2 cores, 512 dimensions, 30 nearest:
Chroma 1.1-2.6 ms at 10k chunks, 2.2 ms at 30k; the scan 0.54 ms at 10k, ~1.0 ms with its
copy out of the CPU cache, as after a query embedding), and it is exact where HNSW may miss a
neighbour. Chroma stays the store of record: the copy is read from it (``Store.unit_vectors``)
and answers only while the catalogue shows the versions it was taken under (``shown``, a
``catalogue.ChunkFilter``); after that, until the searcher is rebuilt (a refresh ends by
building a new one), Chroma answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EXACT_MAX = 25_000
"""Above this many chunks the scan costs more than Chroma's query (and the copy 50 MB at 512
dimensions): Chroma answers."""


class ExactIndex:
    """Unit vectors of ``ids`` (one row each) and their kinds, taken while the catalogue
    showed ``shown``."""

    def __init__(
        self, ids: Sequence[str], matrix: np.ndarray, kinds: Sequence[str], shown: object
    ) -> None:
        if len(ids) != len(matrix) or len(ids) != len(kinds):
            raise ValueError(f"{len(ids)} ids, {len(matrix)} vectors, {len(kinds)} kinds")
        self.ids = list(ids)
        # Stored transposed (dimensions x chunks, contiguous): ``q @ T`` is faster than ``M @ q``
        # on one BLAS thread (10,120 x 512 float32, 2 cores: 0.39 against 0.98 ms in cache,
        # 0.87-0.89 against 1.48-1.68 ms out of it), same scores to 2.4e-7. A second copy: the
        # store keeps its row-major one (``Store.unit_vectors``), 20 MB at 10k chunks.
        self._by_dimension = np.ascontiguousarray(np.asarray(matrix, dtype=np.float32).T)
        self.shown = shown
        self._codes = {kind: i for i, kind in enumerate(sorted(set(kinds)))}
        self._kinds = np.asarray([self._codes[k] for k in kinds], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ids)

    def query(
        self, vector: Sequence[float], n: int, kinds: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest chunks (of ``kinds`` if given) as (id, cosine similarity), best
        first, ties in stored order: what ``Store.query`` answers."""
        q = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        if norm:
            q = q / norm
        scores = q @ self._by_dimension if len(self.ids) else np.zeros(0, dtype=np.float32)
        rows = np.arange(len(scores))
        if kinds:
            codes = [self._codes[k] for k in kinds if k in self._codes]
            rows = np.flatnonzero(np.isin(self._kinds, codes))
        if n < len(rows):  # everything as good as the n-th, so ties keep their order
            nth = -np.partition(-scores[rows], n - 1)[n - 1]
            rows = rows[scores[rows] >= nth]
        rows = rows[np.lexsort((rows, -scores[rows]))][:n]
        return [(self.ids[r], float(scores[r])) for r in rows.tolist()]
