"""How much work reading one document may cost: pages, decoded content and time.

A PDF is small on disk and huge once decoded when its pages share one compressible content
stream (75 KB on disk, 20 pages x 70 MB decoded kept a refresh busy two minutes). Before a
page's text is extracted, ``guarded_pages`` measures its decoded content streams (inflating at
most one page's budget, never the whole stream) and checks the document's running totals and
clock; over budget, the document fails with « trop coûteux à lire » and the refresh skips it
like any bad input (a previous version stays indexed).

    for number, page in enumerate(guarded_pages(reader, source, budget), start=1):
        text = extract(page)
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.errors import DocumentError
from assistant.settings import Settings

if TYPE_CHECKING:  # pypdf loads with the first PDF read, not with the library (~0.2 s)
    from pypdf import PageObject, PdfReader
    from pypdf.generic import StreamObject

log = logging.getLogger(__name__)

TOO_COSTLY = "trop coûteux à lire"
_MB = 2**20


@dataclass(frozen=True)
class ReadBudget:
    """Per-document bounds (the ``Settings`` fields of the same meaning)."""

    max_pages: int = 2_000
    max_page_bytes: int = 8 * _MB
    max_document_bytes: int = 64 * _MB
    max_seconds: float = 60.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadBudget:
        return cls(
            max_pages=settings.max_pdf_pages,
            max_page_bytes=int(settings.max_page_content_mb * _MB),
            max_document_bytes=int(settings.max_document_content_mb * _MB),
            max_seconds=settings.max_document_seconds,
        )


def too_costly(source: str, what: str, limit: str, value: object) -> DocumentError:
    return DocumentError(source, f"{TOO_COSTLY} — {what} (limite {limit} = {value})")


def _streams(page: PageObject) -> list[StreamObject]:
    contents = page.get("/Contents")
    if contents is None:
        return []
    obj = contents.get_object()
    from pypdf.generic import ArrayObject, StreamObject

    items = list(obj) if isinstance(obj, ArrayObject) else [obj]
    return [s for s in (item.get_object() for item in items) if isinstance(s, StreamObject)]


def _decoded_size(stream: StreamObject, cap: int) -> int:
    """The stream's decoded length, or ``cap`` once it reaches it: Flate is inflated at most
    ``cap`` bytes (the usual filter); other filters are decoded by pypdf as extraction would."""
    filters = stream.get("/Filter")
    from pypdf.generic import ArrayObject

    names = [str(f) for f in filters] if isinstance(filters, ArrayObject) else [str(filters)]
    raw: bytes = getattr(stream, "_data", b"")
    try:
        if filters is None:
            return min(len(raw) if raw else len(stream.get_data()), cap)
        if names == ["/FlateDecode"] and raw:
            return len(zlib.decompressobj().decompress(raw, cap))
        return min(len(stream.get_data()), cap)
    except Exception:  # a damaged stream: the extraction reports it as an unreadable page
        return 0


def page_content_size(page: PageObject, cap: int) -> int:
    """Decoded bytes of a page's content streams, counted up to ``cap``."""
    total = 0
    for stream in _streams(page):
        total += _decoded_size(stream, cap - total)
        if total >= cap:
            break
    return total


def guarded_pages(
    reader: PdfReader, source: str, budget: ReadBudget | None
) -> Iterator[PageObject]:
    """``reader.pages``, each checked against ``budget`` before it is handed out (no budget:
    unchecked). Raises DocumentError « trop coûteux à lire » when a bound is passed."""
    pages = reader.pages
    if budget is None:
        yield from pages
        return
    if len(pages) > budget.max_pages:
        raise too_costly(source, f"{len(pages)} pages", "max_pdf_pages", budget.max_pages)
    start = budget.clock()
    total = 0
    for number, page in enumerate(pages, start=1):
        elapsed = budget.clock() - start
        if elapsed > budget.max_seconds:
            raise too_costly(
                source,
                f"{elapsed:.0f} s pour {number - 1} pages",
                "max_document_seconds",
                budget.max_seconds,
            )
        size = page_content_size(page, budget.max_page_bytes + 1)
        if size > budget.max_page_bytes:
            raise too_costly(
                source,
                f"page {number} : contenu décodé de plus de {budget.max_page_bytes // _MB} Mo",
                "max_page_content_mb",
                budget.max_page_bytes / _MB,
            )
        total += size
        if total > budget.max_document_bytes:
            raise too_costly(
                source,
                f"contenu décodé de plus de {budget.max_document_bytes // _MB} Mo "
                f"à la page {number}",
                "max_document_content_mb",
                budget.max_document_bytes / _MB,
            )
        yield page
