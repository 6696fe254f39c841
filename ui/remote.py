"""Refresh through a running ``alliance serve`` (``alliance refresh --server URL``).

An embedded index is open in one process only (``indexing.owner_lock``); while ``serve`` holds
it, a refresh from a shell asks the server to run it, through the staff API
(``/api/admin/refresh``, admin token), follows its progress and returns the same report a local
refresh would. Every wait is bounded.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import httpx

from assistant.errors import ConfigError, IndexBusyError, IndexLockedError, RemoteError
from assistant.indexing import owner_lock as ownership
from assistant.indexing.refresh import Progress
from assistant.types import RefreshReport

if TYPE_CHECKING:
    from assistant.core import Assistant

log = logging.getLogger(__name__)


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
            raise ConfigError("--dry-run runs locally only: drop --server")
        return refresh_on_server(server, settings.admin_token, progress=progress), server
    try:
        return assistant.refresh(dry_run=dry_run, progress=progress), ""
    except IndexBusyError:
        url = ownership.holder_url(settings.index_dir)
        if not url or dry_run or not settings.admin_token:
            raise
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
        raise ConfigError("refresh --server needs the server's admin token in ALLIANCE_ADMIN_TOKEN")
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
                raise RemoteError(f"no report from {url} after {timeout_s:.0f} s")
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
        raise RemoteError(f"the server's refresh failed: {run['error']}")
    if not isinstance(run.get("report"), dict):
        raise RemoteError(f"{url} ended its refresh without a report")
    return RefreshReport.from_dict(run["report"])


def _call(http: httpx.Client, method: str, url: str, headers: dict[str, str]) -> dict[str, Any]:
    try:
        response = http.request(method, url, headers=headers)
    except httpx.HTTPError as exc:
        raise RemoteError(f"cannot reach {url}: {exc}") from exc
    if response.status_code == 401:
        raise ConfigError(f"{url} refused the admin token (ALLIANCE_ADMIN_TOKEN)")
    if response.status_code == 404:
        raise RemoteError(f"{url} not found: is the staff console on (ALLIANCE_ADMIN_TOKEN)?")
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 503:
        raise IndexLockedError(str(body.get("error") or "a refresh is already running"))
    if response.status_code >= 400 or not isinstance(body, dict):
        raise RemoteError(f"{url} answered {response.status_code}: {str(body)[:200]}")
    return body
