"""`alliance serve` as a newcomer runs it: where it listens comes from ALLIANCE_PORT /
ALLIANCE_HOST (what `make run PORT=…` passes on), it says so in index/owner.json for a second
terminal, and a SIGTERM leaves no owner.json behind (a real process on 127.0.0.1); what the
documents' links open."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from fixtures_docs import BOILERPLATE_HTML
from langchain_core.embeddings import Embeddings
from web_support import free_port

from assistant import Assistant, Settings
from assistant.feedback import FeedbackStore
from assistant.indexing import owner_lock as ownership
from ui.render import passage_html
from ui.server import create_app


def test_serve_takes_its_port_from_the_environment_and_cleans_up_on_sigterm(
    tmp_path: Path,
) -> None:
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    port = free_port()
    env = {**os.environ, "ALLIANCE_PORT": str(port), "ALLIANCE_HOST": "127.0.0.1"}
    env.pop("ALLIANCE_ADMIN_TOKEN", None)
    cmd = [sys.executable, "-m", "ui.cli", "--corpus", str(corpus), "--index", str(index), "serve"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        info = index / ownership.INFO_NAME
        deadline = time.monotonic() + 120
        url = ""
        while time.monotonic() < deadline and proc.poll() is None:
            if info.exists():
                url = json.loads(info.read_text(encoding="utf-8")).get("url", "")
            if url:
                try:
                    if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        assert url == f"http://127.0.0.1:{port}", url
        page = httpx.get(url + "/", timeout=10).text
        assert 'lang="fr"' in page[:200] and 'lang="en"' not in page[:200]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert f"interface sur http://127.0.0.1:{port}/" in stderr
    assert not info.exists(), "owner.json left behind after SIGTERM"
    assert "DEBUG" not in stderr  # nothing below WARNING at the default level


def test_a_bad_port_in_the_environment_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "ALLIANCE_PORT": "huit-mille"}
    done = subprocess.run(
        [sys.executable, "-m", "ui.cli", "--index", str(tmp_path / "i"), "serve"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "ALLIANCE_PORT=8000 alliance serve" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_html_source_opens_as_its_indexed_main_text(
    tmp_path: Path, hash_embeddings: Embeddings
) -> None:
    """The passage's main link of a corpus HTML page leads to its text as indexed (no cookie
    banner, no menu), with the original one click away; nothing of the page runs."""
    corpus = tmp_path / "corpus"
    (corpus / "boite-a-outils").mkdir(parents=True)
    hostile = BOILERPLATE_HTML.replace(
        "</article>", "<p>Fin <script>window.x=1</script><img src=x onerror=alert(1)></p></article>"
    )
    (corpus / "boite-a-outils" / "guide web.html").write_text(hostile, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    assistant = Assistant(settings, embedder=hash_embeddings)
    assert not assistant.refresh().failed
    hit = assistant.search("trois étapes clés", k=1)[0]
    card = passage_html(1, hit, [])
    link = re.search(r'class="passage-link" href="([^"]+)"', card)
    assert link and link.group(1) == "/texte/boite-a-outils/guide%20web.html"
    assert 'href="/sources/boite-a-outils/guide%20web.html"' in card  # the original
    client = TestClient(create_app(settings, assistant, feedback=FeedbackStore(tmp_path / "f")))
    page = client.get(link.group(1))
    assert page.status_code == 200 and "sandbox" in page.headers["content-security-policy"]
    assert "Les trois étapes clés" in page.text and "confiance réciproque" in page.text
    assert "cookies" not in page.text and "Nous contacter" not in page.text
    assert "<script" not in page.text and "<img" not in page.text
    assert 'href="/sources/boite-a-outils/guide%20web.html"' in page.text
    # only indexed HTML files: not a PDF, not a file outside the index
    assert client.get("/texte/boite-a-outils/absent.html").status_code == 404
    assert client.get("/texte/../index/catalog.sqlite").status_code == 404
    assistant.close()
