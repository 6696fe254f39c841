"""The `alliance` command line, end to end on a small corpus (deterministic embeddings are
injected through the embedder spec `sentence-transformers:` would load a model, so these tests
run the real CLI with the real default embedder on three short documents)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ui.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def dirs(small_corpus: Path, tmp_path: Path) -> list[str]:
    return ["--corpus", str(small_corpus), "--index", str(tmp_path / "index")]


def test_refresh_search_ask_eval(
    dirs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*dirs, "refresh"]) == 0
    out = capsys.readouterr().out
    assert "3 documents : 3 ajoutés" in out

    assert main([*dirs, "refresh", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {d["status"] for d in report["documents"]} == {"unchanged"}
    assert report["chunks_embedded"] == 0

    assert main([*dirs, "search", "valeurs du Pacte civique", "--k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["source"] == "charte/pacte.md" and len(hits) == 2

    assert main([*dirs, "ask", "Quelles sont les quatre valeurs du Pacte civique ?"]) == 0
    out = capsys.readouterr().out
    assert "[1]" in out and "Sources :" in out and "charte/pacte.md" in out

    questions = tmp_path / "q.jsonl"
    lines = [
        {
            "id": "a",
            "question": "Quelles valeurs porte le Pacte civique ?",
            "answerable": True,
            "gold": [{"source": "charte/pacte.md"}],
            "facts": ["fraternité"],
            "type": "list",
        },
        {
            "id": "b",
            "question": "Quelle est la recette de la tarte tatin ?",
            "answerable": False,
            "gold": [],
            "facts": [],
        },
    ]
    questions.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    assert main([*dirs, "eval", str(questions), "--json", "--min-recall5", "0.9"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["recall@5"] == 1.0 and summary["abstention_accuracy"] == 1.0
    # a floor that cannot be met fails the command (CI relies on this)
    assert main([*dirs, "eval", str(questions), "--min-mrr", "1.01"]) == 1
    assert "EN DESSOUS DU PLANCHER" in capsys.readouterr().err
    assert summary["by_type"]["list"]["questions"] == 1
    assert summary["by_type"]["untyped"]["abstention_accuracy"] == 1.0
    details = tmp_path / "details.jsonl"
    code = main([*dirs, "eval", str(questions), "--min-evidence-recall", "1.01",
                 "--details", str(details)])  # fmt: skip
    assert code == 1
    captured = capsys.readouterr()
    assert "evidence_recall@5" in captured.err and "fully_answered_rate" in captured.out
    assert "type" in captured.out.splitlines()[-4]  # the per-type table follows the summary
    first = json.loads(details.read_text("utf-8").splitlines()[0])
    assert first["type"] == "list" and first["evidence_found"] == ["fraternité"]
    assert set(first["facts_found"]) | set(first["facts_missing"]) == {"fraternité"}
    assert main([*dirs, "eval", str(questions), "--min-fact-coverage", "1.01"]) == 1


def test_errors_are_one_line_and_a_non_zero_exit(
    dirs: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*dirs, "search", "pacte"]) == 3  # empty index: IndexNotReadyError
    err = capsys.readouterr().err
    assert err.startswith("alliance: erreur :") and "refresh" in err and "Traceback" not in err
    assert main([*dirs, "--embedder", "nope", "refresh"]) == 2
    assert "unknown embedder" in capsys.readouterr().err
    assert main([*dirs, "eval", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read questions file" in capsys.readouterr().err
