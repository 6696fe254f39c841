"""One process at a time opens an embedded Chroma index.

Chroma's embedded store (``PersistentClient``) is not safe across processes: every process that
opens a collection applies the write log to the HNSW files on disk itself, so a reader next to a
writer (``alliance serve`` while ``alliance refresh`` runs in a shell, two CLIs) rewrites the
same files at once. Measured here with chromadb 1.5.9: fresh-process searches every 0.2 s next
to a refresh loop hit "Failed to apply logs to the hnsw segment writer" within 30 s, then every
later process opening the index died with SIGSEGV: the index was lost. (Upstream says the same:
use a Chroma server for more than one process, ``Settings.chroma_url`` here.)

So the first process to open an embedded index claims it with an exclusive ``flock`` on
``index_dir/owner.lock`` and keeps it until it closes its client or exits (the kernel drops the
lock even on SIGKILL). Another process gets ``IndexBusyError`` saying who holds it, before it
touches a Chroma file. Within one process, Assistants share the claim (counted): Chroma shares
one system per path in a process, and our own locks order refreshes and searches there.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import IndexBusyError
from assistant.indexing.paths import OWNER_INFO, OWNER_LOCK

log = logging.getLogger(__name__)

LOCK_NAME = OWNER_LOCK
INFO_NAME = OWNER_INFO


@dataclass
class _Claim:
    fd: int
    pid: int
    users: int


# Process-wide on purpose: a flock belongs to the process (its open file), so the count of
# users of each claim has to be too. Keyed by the resolved index folder.
_CLAIMS: dict[Path, _Claim] = {}
_GUARD = threading.Lock()


def claim(index_dir: Path) -> None:
    """Claim ``index_dir`` for this process (again, if it already holds it); IndexBusyError
    when another process holds it. Pair each call with ``release``."""
    index_dir.mkdir(parents=True, exist_ok=True)
    key = index_dir.resolve()
    with _GUARD:
        held = _CLAIMS.get(key)
        if held is not None and held.pid == os.getpid():
            held.users += 1
            return
        # a claim inherited through fork() is the parent's: this process must take its own
        fd = os.open(key / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexBusyError(busy_message(key)) from None
        _CLAIMS[key] = _Claim(fd, os.getpid(), 1)
        _write_info(key)
        log.debug("claimed %s", key)


def release(index_dir: Path) -> None:
    """Give back one use of this process's claim; the last one unlocks the folder."""
    key = index_dir.resolve()
    with _GUARD:
        held = _CLAIMS.get(key)
        if held is None or held.pid != os.getpid():
            return
        held.users -= 1
        if held.users > 0:
            return
        del _CLAIMS[key]
        (key / INFO_NAME).unlink(missing_ok=True)
        os.close(held.fd)  # unlocks
        log.debug("released %s", key)


def advertise(index_dir: Path, url: str) -> None:
    """Record, for processes this one refuses, the URL where it serves the index (``alliance
    serve``): ``alliance refresh`` then runs the refresh there. Only while holding the claim."""
    key = index_dir.resolve()
    with _GUARD:
        held = _CLAIMS.get(key)
        if held is None or held.pid != os.getpid():
            return
        _write_info(key, url=url)


def holder(index_dir: Path) -> dict[str, object]:
    """What the holder wrote about itself (pid, command, since, url), or {} when unknown."""
    try:
        info = json.loads((index_dir / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def busy_message(index_dir: Path) -> str:
    """Who holds ``index_dir`` and what to do instead, in the words the CLI and UI show."""
    info = holder(index_dir)
    who = ""
    if info:
        try:
            since = time.strftime("%d/%m %H:%M", time.localtime(float(str(info.get("since")))))
        except (TypeError, ValueError, OverflowError, OSError):  # a hand-edited file
            since = "?"
        where = f", sur {info['url']}" if info.get("url") else ""
        who = f" (pid {info.get('pid')} : « {info.get('command', '?')} »{where}, depuis {since})"
    return (
        f"l'index {index_dir} est ouvert par un autre processus{who}. "
        "Un index local ne s'ouvre que dans un processus à la fois. Si c'est `alliance "
        "serve` : interrogez-le par son API (/api/ask, /api/search) et mettez à jour par sa "
        "console équipe ou `alliance refresh --server URL` ; sinon, attendez qu'il se termine. "
        "Pour plusieurs processus sur un index, utilisez un serveur Chroma (chroma_url)."
    )


def holder_url(index_dir: Path) -> str:
    """The URL the holder serves the index at, if it said (see ``advertise``)."""
    return str(holder(index_dir).get("url") or "")


def _write_info(key: Path, url: str = "") -> None:
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "?"
    info = {"pid": os.getpid(), "command": command[:200], "since": time.time(), "url": url}
    tmp = key / f"{INFO_NAME}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(info), encoding="utf-8")
        tmp.replace(key / INFO_NAME)
    except OSError:  # informational only
        log.debug("could not write %s", key / INFO_NAME, exc_info=True)
