"""Plain result types shared by the library, the CLI, the REST API and the UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# Who wrote an answer: quotes of the documents, a model on an OpenAI-compatible server, or the
# bundled local model (ALLIANCE_LLM=local).
AnswerKind = Literal["extractive", "llm", "local-llm"]


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, with what a citation needs."""

    text: str
    source: str  # path relative to the corpus folder, or a URL
    title: str
    kind: str
    page: int | None
    score: float
    chunk_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """An answer whose sentences end with [n] markers; ``citations[n-1]`` is the source of [n].

    ``grounded`` is False when the assistant declined; then ``citations`` (and ``related``)
    list the nearby documents that share the question's subject, as suggestions, not support.
    """

    text: str
    citations: list[Hit]
    grounded: bool
    query: str = ""  # the query actually searched (follow-ups are rewritten from history)
    kind: AnswerKind = "extractive"
    # A model's answer: how many sentences it wrote, and how many of them the checks removed
    # (no supporting passage, or a number or name not in it). Kept on a fallback too.
    drafted: int = 0
    dropped: int = 0
    # Of a model's answer: the extracts our code added because the model's text lacked them
    # (``drafting.complete_with_extracts``).
    completed: int = 0
    # On a decline: the documents that share the question's subject (shown as « Documents
    # proches », never as sources); empty for an off-topic question and for answers. Not in
    # the JSON shape: there a decline's ``citations`` are these, and ``grounded`` says so.
    related: list[Hit] = field(default_factory=list)

    def to_dict(self, hit: Callable[[Hit], dict[str, Any]] = Hit.to_dict) -> dict[str, Any]:
        """The one JSON shape of an answer (CLI, REST, stream); ``hit`` shapes each citation
        (the REST API adds links to it)."""
        return {
            "answer": self.text,
            "citations": [hit(c) for c in self.citations],
            "grounded": self.grounded,
            "query": self.query,
            "kind": self.kind,
            "drafted": self.drafted,
            "dropped": self.dropped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The inverse of ``to_dict`` (an answer read back from the REST API); fields the type
        does not know, such as the API's links on citations, are ignored."""
        known = set(Hit.__dataclass_fields__)
        kind = data.get("kind")
        return cls(
            text=str(data.get("answer", "")),
            citations=[
                Hit(**{k: v for k, v in h.items() if k in known}) for h in data.get("citations", [])
            ],
            grounded=bool(data.get("grounded")),
            query=str(data.get("query", "")),
            kind=kind if kind in ("extractive", "llm", "local-llm") else "extractive",
            drafted=int(data.get("drafted") or 0),
            dropped=int(data.get("dropped") or 0),
        )


RefreshStart = Literal["current", "answering", "warm"]
"""How a refresh run in the background goes (``Assistant.prepare_refresh``): ``current``, no
refresh is needed; ``answering``, the index answers meanwhile (a stale complete index, or the
previous build's collection); ``warm``, a first build: nothing answers until ``warm_start``
has read the early index, and the mode is lexical from now on."""


@dataclass(frozen=True)
class Building:
    """A build being written while another answers: its label and the chunks it holds."""

    embedder: str
    chunks: int


@dataclass(frozen=True)
class IndexStats:
    """What answers now (``Assistant.stats()``)."""

    documents: int  # searchable documents of the serving collection
    chunks: int
    embedder: str  # the serving build's label
    collection: str
    building: Building | None = None  # the configured build, while it is being written

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.building is None:
            del out["building"]
        return out


Status = Literal["added", "updated", "unchanged", "removed", "failed", "warning"]


@dataclass
class DocumentReport:
    """What a refresh did to one document."""

    source: str
    status: Status
    reason: str = ""
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_kept: int = 0
    pages: int | None = None
    pages_changed: list[int] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # other names of the same content
    duplicate_of: str = ""  # set on an alias: the name its content is indexed under
    renamed_from: str = ""  # the file's previous name when it was moved or renamed


@dataclass
class RefreshReport:
    """The whole refresh, per document, with totals."""

    documents: list[DocumentReport] = field(default_factory=list)
    seconds: float = 0.0
    embedder: str = ""
    dry_run: bool = False
    # The embedder whose collection answers after this refresh, and the one it replaced when
    # this refresh completed a new embedder's collection (see assistant.indexing.active).
    active_embedder: str = ""
    switched_from: str = ""

    def count(self, status: Status) -> int:
        return sum(1 for d in self.documents if d.status == status)

    @property
    def chunks_embedded(self) -> int:
        return sum(d.chunks_added for d in self.documents)

    @property
    def chunks_removed(self) -> int:
        return sum(d.chunks_removed for d in self.documents)

    @property
    def failed(self) -> list[DocumentReport]:
        return [d for d in self.documents if d.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": [asdict(d) for d in self.documents],
            "seconds": round(self.seconds, 3),
            "embedder": self.embedder,
            "dry_run": self.dry_run,
            "active_embedder": self.active_embedder,
            "switched_from": self.switched_from,
            "chunks_embedded": self.chunks_embedded,
            "chunks_removed": self.chunks_removed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefreshReport:
        """The inverse of ``to_dict`` (a report read back from the log or from a server)."""
        known = set(DocumentReport.__dataclass_fields__)
        return cls(
            documents=[
                DocumentReport(**{k: v for k, v in d.items() if k in known})
                for d in data.get("documents", [])
            ],
            seconds=float(data.get("seconds", 0.0)),
            embedder=str(data.get("embedder", "")),
            dry_run=bool(data.get("dry_run")),
            active_embedder=str(data.get("active_embedder", "")),
            switched_from=str(data.get("switched_from", "")),
        )
