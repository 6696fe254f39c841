"""``alliance refresh --server URL``: while ``alliance serve`` holds the embedded index, a
refresh from a shell runs on the server (staff API, admin token) and prints the same report.
A real uvicorn server in a thread; the CLI in a separate process where it matters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_corpus
from langchain_core.embeddings import Embeddings
from web_support import running_server

from assistant import Assistant, Settings
from assistant.feedback import FeedbackStore
from assistant.indexing import owner_lock as ownership
from ui.cli import main
from ui.server import create_app

TOKEN = "s3cret-token-for-remote-tests-42"


def test_refresh_through_a_running_server(
    tmp_path: Path,
    hash_embeddings: Embeddings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", admin_token=TOKEN)
    assistant = Assistant(settings, embedder=hash_embeddings)
    assistant.refresh()
    (corpus / "recits" / "nouveau.md").write_text(
        "# Un nouveau récit\n\nUne fondation et une mairie montent un jardin partagé.\n",
        encoding="utf-8",
    )
    app = create_app(settings, assistant, feedback=FeedbackStore(tmp_path / "fb.sqlite"))
    with running_server(app) as base:
        cli = [sys.executable, "-m", "ui.cli", "--corpus", str(corpus),
               "--index", str(settings.index_dir), "refresh"]  # fmt: skip
        env = {**os.environ, "ALLIANCE_ADMIN_TOKEN": TOKEN}
        local = subprocess.run(cli, capture_output=True, text=True, timeout=120, env=env)
        assert local.returncode == 4 and "refresh --server URL" in local.stderr

        remote = subprocess.run(
            [*cli, "--server", base, "--json"], capture_output=True, text=True, timeout=120,
            env=env, check=False,
        )  # fmt: skip
        assert remote.returncode == 0, remote.stderr
        report = json.loads(remote.stdout)
        statuses = {d["source"]: d["status"] for d in report["documents"]}
        assert statuses["recits/nouveau.md"] == "added"
        assert report["chunks_embedded"] >= 1
        # the server answers from what it just indexed
        assert assistant.search("jardin partagé mairie", k=1)[0].source == "recits/nouveau.md"

        # once the server says where it listens (`alliance serve` does), a plain refresh
        # runs there; without the token it is refused, and told where the server is
        ownership.advertise(settings.index_dir, base)
        (corpus / "recits" / "autre.md").write_text(
            "# Autre récit\n\nUne entreprise prête ses salariés à une association.\n",
            encoding="utf-8",
        )
        auto = subprocess.run(
            [*cli, "--json"], capture_output=True, text=True, timeout=120, env=env, check=False
        )
        assert auto.returncode == 0, auto.stderr
        assert f"tenu par {base}" in auto.stderr
        assert {d["source"]: d["status"] for d in json.loads(auto.stdout)["documents"]}[
            "recits/autre.md"
        ] == "added"
        no_token = {k: v for k, v in env.items() if k != "ALLIANCE_ADMIN_TOKEN"}
        refused = subprocess.run(
            cli, capture_output=True, text=True, timeout=120, env=no_token, check=False
        )
        assert refused.returncode == 2 and f"({base})" in refused.stderr
        # it says the token is what is missing, and the command to type
        assert "ALLIANCE_ADMIN_TOKEN=<jeton du serveur> alliance refresh" in refused.stderr
        # a preview cannot run there: told how to get one
        dry = subprocess.run(
            [*cli, "--dry-run"], capture_output=True, text=True, timeout=120, env=env,
            check=False,
        )  # fmt: skip
        assert dry.returncode == 2 and "`alliance refresh --dry-run`" in dry.stderr

        # a wrong token: a clear refusal, nothing run
        monkeypatch.setenv("ALLIANCE_ADMIN_TOKEN", "wrong-token-wrong-token-00")
        assert main(["refresh", "--server", base]) == 2
        assert "a refusé le jeton d'administration" in capsys.readouterr().err
        # the table a local refresh prints, now from the server: nothing changed since
        monkeypatch.setenv("ALLIANCE_ADMIN_TOKEN", TOKEN)
        assert main(["refresh", "--server", base]) == 0
        out = capsys.readouterr().out
        assert "Rien à faire : l'index est à jour (5 documents inchangés" in out


def test_refresh_server_needs_a_token_and_no_dry_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALLIANCE_ADMIN_TOKEN", raising=False)
    assert main(["refresh", "--server", "http://127.0.0.1:9"]) == 2
    assert "ALLIANCE_ADMIN_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("ALLIANCE_ADMIN_TOKEN", TOKEN)
    assert main(["refresh", "--dry-run", "--server", "http://127.0.0.1:9"]) == 2
    assert "--dry-run" in capsys.readouterr().err
    assert main(["refresh", "--server", "http://127.0.0.1:9"]) == 5  # nothing listens there
    assert "impossible de joindre" in capsys.readouterr().err


def test_ask_and_search_go_to_the_server_holding_the_index(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    """A second terminal next to `alliance serve`: ask and search are answered by the server
    (its public API, no token), in French, with the same output a local run gives."""
    corpus = tmp_path / "corpus"
    (corpus / "boite-a-outils").mkdir(parents=True)
    (corpus / "boite-a-outils" / "jardins.md").write_text(
        "# Jardins partagés\n\nUne mairie prête une friche ; trois associations y cultivent "
        "un jardin partagé avec les habitants du quartier.\n",
        encoding="utf-8",
    )
    # hashing embeddings have their own similarity scale: no abstention floor
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", abstain_threshold=0.0)
    assistant = Assistant(settings, embedder=hash_embeddings)
    assistant.refresh()
    app = create_app(settings, assistant, feedback=FeedbackStore(tmp_path / "fb.sqlite"))
    cli = [sys.executable, "-m", "ui.cli", "--corpus", str(corpus),
           "--index", str(settings.index_dir)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "ALLIANCE_ADMIN_TOKEN"}
    with running_server(app) as base:
        # a holder that did not say where it listens (a notebook): refused, told what to do
        alone = subprocess.run(
            [*cli, "search", "jardin partagé"], capture_output=True, text=True, timeout=120,
            env=env, check=False,
        )  # fmt: skip
        assert alone.returncode == 4 and "ouvert par un autre processus" in alone.stderr
        assert "with Assistant(...) as a:" in alone.stderr and "alliance search" in alone.stderr

        ownership.advertise(settings.index_dir, base)  # what `alliance serve` does
        found = subprocess.run(
            [*cli, "search", "jardin partagé", "--json", "--k", "1"], capture_output=True,
            text=True, timeout=120, env=env, check=False,
        )  # fmt: skip
        assert found.returncode == 0, found.stderr
        assert f"`alliance serve` ({base}) : il a répondu" in found.stderr
        hits = json.loads(found.stdout)
        assert hits[0]["source"] == "boite-a-outils/jardins.md" and hits[0]["title"]

        asked = subprocess.run(
            [*cli, "ask", "Qui prête la friche du jardin partagé ?"], capture_output=True,
            text=True, timeout=120, env=env, check=False,
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        assert "mairie" in asked.stdout and "[1]" in asked.stdout
        assert "Sources :" in asked.stdout and "jardins.md" in asked.stdout

        # the server's own French refusal comes through, one line, exit 2 (a query error)
        empty = subprocess.run(
            [*cli, "ask", "  "], capture_output=True, text=True, timeout=120, env=env,
            check=False,
        )  # fmt: skip
        assert empty.returncode == 2 and empty.stderr.startswith("alliance: erreur :")
        assert "Traceback" not in empty.stderr
    assistant.close()
