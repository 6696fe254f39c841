"""The seams a change goes through, checked without Chroma or a model: the loader registry is
the one list of file types, errors reach the edge by type, an answer has one JSON shape, the
decline rule reads the evidence strength from the retrieval, and tests cannot reach the
network."""

from __future__ import annotations

import inspect
import socket
from pathlib import Path

import pytest

from assistant import errors
from assistant.errors import (
    AllianceError,
    ConfigError,
    ConflictError,
    DocumentError,
    FetchError,
    IndexBusyError,
    IndexLockedError,
    IndexNotReadyError,
    LimitExceeded,
    QueryError,
    RateLimited,
    RemoteError,
    TooLargeError,
    UnsupportedTypeError,
)
from assistant.indexing.store import StoredChunk
from assistant.ingest import web_fetch
from assistant.ingest.loaders import (
    FORMATS,
    SUPPORTED_SUFFIXES,
    UPLOAD_SUFFIXES,
    discover,
    format_for,
    load_document,
)
from assistant.retrieval.rerank import KEEP_ORDER
from assistant.retrieval.results import Retrieval, Scored
from assistant.types import Answer, Hit
from ui import cli
from ui.api import answer_payload, status_for
from ui.cli import EXIT_TABLE, build_parser, exit_code


def test_the_registry_is_the_one_list_of_file_types(tmp_path: Path) -> None:
    assert {s for f in FORMATS for s in f.suffixes} == SUPPORTED_SUFFIXES
    assert {".pdf", ".html", ".htm"} == UPLOAD_SUFFIXES  # the formats that can check content
    assert set(web_fetch.CONTENT_TYPES.values()) <= SUPPORTED_SUFFIXES
    assert web_fetch.CONTENT_TYPES["application/xhtml+xml"] == ".html"
    fmt = format_for(".HTM")
    assert fmt is not None and fmt.label == "HTML" and fmt.media_type == "text/html"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "Compte rendu.MARKDOWN").write_text(
        "---\ntitle: Réunion du comité\n---\nLe comité valide le budget du projet commun.\n",
        encoding="utf-8",
    )
    (tmp_path / "notes" / "tableau.xlsx").write_bytes(b"PK\x03\x04")
    found = discover(tmp_path)
    assert [p.name for p in found] == ["Compte rendu.MARKDOWN"]
    loaded = load_document(found[0], tmp_path)
    assert loaded.title == "Réunion du comité" and loaded.page_count is None
    assert "page" not in loaded.pages[0].metadata
    with pytest.raises(UnsupportedTypeError, match="non pris en charge"):
        load_document(tmp_path / "notes" / "tableau.xlsx", tmp_path)


def test_errors_reach_the_edge_by_type_not_by_message() -> None:
    # the same French words under another type get another status: the type decides
    assert status_for(TooLargeError("a.pdf", "type refusé")) == 413
    assert status_for(UnsupportedTypeError("a.pdf", "fichier trop volumineux")) == 415
    assert status_for(DocumentError("a.pdf", "le contenu n'est pas un PDF")) == 400
    assert (
        status_for(LimitExceeded("type refusé", limit="max_body_kb", value=1, too_large=True))
        == 413
    )
    assert status_for(ConflictError("fichier trop volumineux")) == 409
    assert status_for(TooLargeError("a", "x")) == 413
    assert status_for(RemoteError("x")) == 502
    assert issubclass(FetchError, Exception) and issubclass(RemoteError, Exception)


def test_exit_codes_follow_the_error_type_and_are_listed_in_the_help() -> None:
    same_words = "l'index est ouvert par un autre processus"  # the message never decides
    assert exit_code(ConfigError(same_words)) == 2
    assert exit_code(LimitExceeded(same_words, limit="max_body_kb", value=1)) == 2
    assert exit_code(QueryError(same_words)) == 2
    assert exit_code(IndexNotReadyError(same_words)) == 3
    assert exit_code(IndexBusyError(same_words)) == exit_code(IndexLockedError("x")) == 4
    assert exit_code(RateLimited(same_words, retry_after=1.0)) == 4
    assert exit_code(RemoteError(same_words)) == exit_code(FetchError("x")) == 5
    assert exit_code(TooLargeError("a.pdf", same_words)) == 6
    assert exit_code(UnsupportedTypeError("a.pdf", "x")) == exit_code(ConflictError("x")) == 6
    assert exit_code(AllianceError(same_words)) == 9
    assert exit_code(ValueError(same_words)) == 70 and exit_code(KeyboardInterrupt()) == 130
    # every error type of errors.py has its row, a subclass never shadowed by its base
    kinds = [kind for kind, _, _ in EXIT_TABLE]
    for i, kind in enumerate(kinds):
        assert not any(issubclass(kind, earlier) for earlier in kinds[:i])
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, AllianceError) and cls is not AllianceError:
            assert any(issubclass(cls, kind) for kind in kinds[:-1]), cls
    shown = build_parser().format_help()
    assert "codes de sortie" in shown
    for code in (0, 1, 2, 3, 4, 5, 6, 9, 70, 130):
        assert f"\n  {code:>3}  " in shown


def test_a_bug_exits_70_with_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "_dispatch", broken)
    assert cli.main(["--index", str(tmp_path / "index"), "search", "x"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "c'est un bug" in err


def _scored(cid: str, dense: float) -> Scored:
    chunk = StoredChunk(cid, f"texte {cid}", {"source": f"{cid}.md", "title": cid})
    return Scored(chunk, fused=0.1, dense=dense, bm25=0.0, dense_rank=None, bm25_rank=None)


def test_evidence_strength_is_the_best_dense_score_of_the_top_passages() -> None:
    results = [_scored("a", 0.2), _scored("b", 0.7), _scored("c", 0.4), _scored("d", 0.9)]
    retrieval = Retrieval("q", [0.0], results)
    assert retrieval.evidence_strength() == 0.7  # top 3 only
    assert retrieval.evidence_strength(1) == 0.2
    assert Retrieval("q", [0.0]).evidence_strength() == 0.0
    assert KEEP_ORDER.rerank("q", results) == results


def test_an_answer_has_one_json_shape() -> None:
    hit = Hit("texte", "notes/a.md", "A", "autre", None, 0.5, "c1")
    answer = Answer("Une phrase. [1]", [hit], True, "q")
    payload = answer_payload(answer)
    assert (
        set(payload)
        == set(answer.to_dict())
        == {"answer", "citations", "grounded", "query", "kind", "drafted", "dropped"}
    )
    assert {k: v for k, v in payload["citations"][0].items() if k in hit.to_dict()} == {
        **hit.to_dict()
    }
    assert "url" in payload["citations"][0]


def test_tests_cannot_reach_the_network() -> None:
    out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with out, pytest.raises(OSError, match="may not reach the network"):
        out.connect(("192.0.2.1", 80))  # TEST-NET-1: never routed anyway
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with server, socket.create_connection(server.getsockname(), timeout=5):
        pass  # loopback is allowed


def test_an_answer_read_back_from_its_json_is_the_same_answer() -> None:
    hit = Hit("texte", "notes/a.md", "A", "autre", 2, 0.5, "c1")
    answer = Answer("Une phrase. [1]", [hit], True, "q", kind="local-llm", drafted=3, dropped=1)
    assert Answer.from_dict(answer_payload(answer)) == answer  # the API's links are ignored
