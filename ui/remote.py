"""Work through a running ``alliance serve`` when it holds the index.

An embedded index is open in one process only (``indexing.owner_lock``); while ``serve`` holds
it (it writes where it listens in ``index/owner.json``), a command from a second terminal goes
to the server instead of failing:

- ``alliance ask`` / ``alliance search`` call its public API (``/api/ask``, ``/api/search``: no
  token needed) and get the same ``Answer`` / ``Hit`` objects a local call returns;
- ``alliance refresh`` (or ``--server URL``) runs the refresh there through the staff API
  (``/api/admin/refresh``, admin token), follows its progress and returns the same report.

Every wait is bounded; every message says what to type next.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import httpx

from assistant.errors import (
    ConfigError,
    IndexBusyError,
    IndexLockedError,
    QueryError,
    RemoteError,
)
from assistant.indexing import owner_lock as ownership
from assistant.indexing.refresh import Progress
from assistant.types import Answer, Hit, RefreshReport

if TYPE_CHECKING:
    from assistant.core import Assistant

log = logging.getLogger(__name__)


TOKEN_HINT = (
    "le rafraîchissement par le serveur (console équipe ou `alliance refresh --server URL`) "
    "demande son jeton d'administration : lancez `ALLIANCE_ADMIN_TOKEN=<jeton du serveur> "
    "alliance refresh` (le même jeton que celui donné à `alliance serve`)"
)


def search_here_or_on_server(
    assistant: Assistant,
    query: str,
    *,
    k: int | None = None,
    kinds: list[str] | None = None,
    client: httpx.Client | None = None,
) -> tuple[list[Hit], str]:
    """``assistant.search``, or the same search on the ``alliance serve`` holding the index.
    Returns the hits and the server's URL ("" when it ran here)."""
    try:
        return assistant.search(query, k=k, kinds=kinds), ""
    except IndexBusyError:
        url = ownership.holder_url(assistant.settings.index_dir)
        if not url:
            raise
        log.info("the index is held by %s: searching there", url)
        body: dict[str, Any] = {"query": query, "k": k, "kinds": kinds}
        data = _public(url, "/api/search", body, client)
        return [_hit(h) for h in data.get("hits", [])], url


def ask_here_or_on_server(
    assistant: Assistant,
    question: str,
    *,
    history: list[dict[str, str]] | None = None,
    kinds: list[str] | None = None,
    client: httpx.Client | None = None,
) -> tuple[Answer, str]:
    """``assistant.ask``, or the same question to the ``alliance serve`` holding the index.
    Returns the answer and the server's URL ("" when it ran here)."""
    try:
        return assistant.ask(question, history=history, kinds=kinds), ""
    except IndexBusyError:
        url = ownership.holder_url(assistant.settings.index_dir)
        if not url:
            raise
        log.info("the index is held by %s: asking there", url)
        body: dict[str, Any] = {"question": question, "history": history or None, "kinds": kinds}
        data = _public(url, "/api/ask", body, client)
        return Answer.from_dict(data), url


def _hit(data: dict[str, Any]) -> Hit:
    known = set(Hit.__dataclass_fields__)
    return Hit(**{k: v for k, v in data.items() if k in known})


def _public(
    url: str, path: str, body: dict[str, Any], client: httpx.Client | None
) -> dict[str, Any]:
    """POST ``body`` to the server's public API; its French error messages come through."""
    own = client is None
    http = client or httpx.Client(timeout=120.0, trust_env=False)
    target = url.rstrip("/") + path
    try:
        response = http.post(target, json={k: v for k, v in body.items() if v is not None})
    except httpx.HTTPError as exc:
        raise RemoteError(
            f"l'index est tenu par `alliance serve` ({url}), mais il ne répond pas ({exc}) : "
            "vérifiez qu'il tourne encore, ou arrêtez-le (Ctrl-C) et relancez la commande"
        ) from exc
    finally:
        if own:
            http.close()
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if response.status_code == 503:
        raise IndexLockedError(
            f"{data.get('error') or 'le serveur n’est pas prêt'} (serveur {url}) : "
            "réessayez dans un instant"
        )
    if response.status_code >= 400:
        error = data.get("error") or f"réponse {response.status_code}"
        if response.status_code in (400, 413, 422):
            raise QueryError(str(error))
        raise RemoteError(f"le serveur {url} a répondu : {error}")
    return data


def refresh_here_or_on_server(
    assistant: Assistant,
    *,
    server: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> tuple[RefreshReport, str]:
    """Refresh with ``assistant``, or on ``server`` when given, or on the ``alliance serve``
    holding the embedded index when this process is refused and the holder said where it
    listens (and the admin token is set). Returns the report and the URL of the server that
    ran it ("" when it ran here)."""
    settings = assistant.settings
    if server:
        if dry_run:
            raise ConfigError(
                "--dry-run s'exécute ici seulement : retirez --server (`alliance refresh "
                "--dry-run`), après avoir arrêté `alliance serve` s'il tient l'index"
            )
        return refresh_on_server(server, settings.admin_token, progress=progress), server
    try:
        return assistant.refresh(dry_run=dry_run, progress=progress), ""
    except IndexBusyError:
        url = ownership.holder_url(settings.index_dir)
        if not url:
            raise
        if dry_run:
            raise ConfigError(
                f"l'index est tenu par `alliance serve` ({url}) et l'aperçu (--dry-run) doit "
                "l'ouvrir ici : arrêtez le serveur (Ctrl-C), lancez `alliance refresh --dry-run`, "
                "puis relancez `alliance serve` ; ou lancez le vrai rafraîchissement sur le "
                "serveur, `ALLIANCE_ADMIN_TOKEN=<jeton> alliance refresh`"
            ) from None
        if not settings.admin_token:
            raise ConfigError(
                f"l'index est tenu par `alliance serve` ({url}) ; {TOKEN_HINT}"
            ) from None
        log.info("the index is held by %s: refreshing there", url)
        return refresh_on_server(url, settings.admin_token, progress=progress), url


def refresh_on_server(
    url: str,
    token: str | None,
    *,
    progress: Progress | None = None,
    poll_s: float = 0.5,
    timeout_s: float = 4 * 3600.0,
    client: httpx.Client | None = None,
) -> RefreshReport:
    """Start a refresh on the server at ``url`` and wait (at most ``timeout_s``) for its report."""
    if not token:
        raise ConfigError(TOKEN_HINT)
    base = url.rstrip("/") + "/api/admin/refresh"
    own = client is None
    http = client or httpx.Client(timeout=30.0, trust_env=False)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        run = _call(http, "POST", base, headers)
        deadline = time.monotonic() + timeout_s
        last = (-1, -1)
        while run.get("running"):
            if time.monotonic() > deadline:
                raise RemoteError(
                    f"aucun rapport de {url} après {timeout_s:.0f} s : consultez la console "
                    "équipe (onglet « Équipe ») ou `alliance refresh --server URL` plus tard"
                )
            if progress is not None and (run.get("done"), run.get("total")) != last:
                last = (int(run.get("done", 0)), int(run.get("total", 0)))
                if last[1]:
                    progress(last[0], last[1], str(run.get("source", "")))
            time.sleep(poll_s)
            run = _call(http, "GET", base, headers)
    finally:
        if own:
            http.close()
    if run.get("error"):
        raise RemoteError(
            f"le rafraîchissement sur le serveur a échoué : {run['error']} ; corrigez puis "
            "relancez `alliance refresh`"
        )
    if not isinstance(run.get("report"), dict):
        raise RemoteError(
            f"{url} a fini son rafraîchissement sans rapport : voyez son journal, puis "
            "relancez `alliance refresh`"
        )
    return RefreshReport.from_dict(run["report"])


def _call(http: httpx.Client, method: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        response = http.request(method, url, headers=headers)
    except httpx.HTTPError as exc:
        raise RemoteError(
            f"impossible de joindre {url} ({exc}) : vérifiez que `alliance serve` tourne, "
            "puis relancez la commande"
        ) from exc
    if response.status_code == 401:
        raise ConfigError(
            f"{url} a refusé le jeton d'administration : donnez le jeton du serveur, "
            "`ALLIANCE_ADMIN_TOKEN=<jeton> alliance refresh`"
        )
    if response.status_code == 404:
        raise RemoteError(
            f"{url} n'a pas de console équipe : relancez `alliance serve` avec "
            "ALLIANCE_ADMIN_TOKEN=<jeton>, puis `ALLIANCE_ADMIN_TOKEN=<jeton> alliance refresh`"
        )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 503:
        raise IndexLockedError(
            str(body.get("error") or "un rafraîchissement est déjà en cours")
            + " : réessayez quand il sera fini"
        )
    if response.status_code >= 400 or not isinstance(body, dict):
        raise RemoteError(f"{url} a répondu {response.status_code} : {str(body)[:200]}")
    return body
