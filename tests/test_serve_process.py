"""`alliance serve` as a newcomer runs it: where it listens comes from ALLIANCE_PORT /
ALLIANCE_HOST (what `make run PORT=…` passes on), it says so in index/owner.json for a second
terminal, and a SIGTERM leaves no owner.json behind. A real process on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from web_support import free_port

from assistant.indexing import owner_lock as ownership


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
