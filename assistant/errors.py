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


class UnsupportedTypeError(DocumentError):
    """A file whose type (suffix or content) Alliance does not read or accept (HTTP 415)."""


class TooLargeError(DocumentError):
    """A file over ``Settings.max_file_mb`` (HTTP 413)."""


class FetchError(AllianceError):
    """Why a web page listed in ``sources.toml`` could not be fetched (shown to staff)."""


class RemoteError(AllianceError):
    """A server (``alliance refresh --server``) could not be reached or answered something
    unexpected."""
