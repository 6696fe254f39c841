"""The refresh log: one JSON line per refresh report under the index folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from assistant.indexing.paths import IndexPaths
from assistant.types import RefreshReport


def append_log(index_dir: Path, report: RefreshReport) -> None:
    """Append the report as one JSON line to the refresh log."""
    entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **report.to_dict()}
    index_dir.mkdir(parents=True, exist_ok=True)
    with IndexPaths(index_dir).refresh_log.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_log(index_dir: Path, last: int = 20) -> list[dict[str, Any]]:
    """The ``last`` refresh reports, newest first (a torn last line is skipped)."""
    path = IndexPaths(index_dir).refresh_log
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines()[-last:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out[::-1]
