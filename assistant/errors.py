"""The few errors a user of Alliance may see; the CLI, REST API and UI translate them at the
edge."""

from __future__ import annotations


class AllianceError(Exception):
    """Base class: every error Alliance raises on purpose."""


class ConfigError(AllianceError):
    """A setting is invalid (unknown embedder, bad number, missing folder...)."""


class DocumentError(AllianceError):
    """One document cannot be indexed; the refresh reports it and goes on.

    ``reason`` is a short French/English phrase shown to staff as is
    (e.g. "PDF chiffré : mot de passe requis").
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class IndexNotReadyError(AllianceError):
    """The index is missing or empty: run ``alliance refresh`` first."""


class IndexLockedError(AllianceError):
    """Another refresh holds the index lock."""


class IndexBusyError(IndexLockedError):
    """Another process has the embedded index open (see ``assistant.indexing.owner_lock``)."""


class QueryError(AllianceError):
    """A query is invalid (empty, too long, k out of range, unknown kind)."""


class LimitExceeded(QueryError):
    """A request, upload or document is over one of the limits in ``Settings``.

    ``limit`` is the Settings field's name (e.g. ``"max_body_kb"``), ``value`` its value and
    ``got`` what was asked for; ``too_large`` is True when the size of a body is at fault (the
    edge answers 413), False for a field out of bounds (422). The message is French and names
    the limit.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        value: int | float,
        got: int | float | None = None,
        too_large: bool = False,
    ) -> None:
        super().__init__(f"{message} (limite {limit} = {value})")
        self.limit = limit
        self.value = value
        self.got = got
        self.too_large = too_large


class RateLimited(AllianceError):
    """A client sent too much too fast (feedback, failed admin tokens): try again after
    ``retry_after`` seconds (the edge answers 429 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(AllianceError):
    """A write would replace something that exists without being asked to (409)."""


class UnsupportedDocument(DocumentError):
    """An upload of a type Alliance does not take, or whose content is not what its name says
    (the edge answers 415)."""
