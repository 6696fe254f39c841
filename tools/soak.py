"""Bounded soak of a real `alliance serve` on 127.0.0.1 (issue 16): N clients x M mixed requests,
well-formed and hostile (oversized, chunked, malformed, over-limit fields, wrong tokens,
traversal), with the server's RSS before, after and at its peak, and the count of 5xx (must be 0).

    .venv/bin/python tools/soak.py                    # spawns a server on a small tmp corpus
    .venv/bin/python tools/soak.py --corpus corpus    # ... on the shipped corpus
    .venv/bin/python tools/soak.py --json

Bounded: at most 100 clients x 200 requests, a timeout per request, loopback only. Exit status 1
when any response is a 5xx or a transport error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

MAX_CLIENTS = 100
MAX_REQUESTS = 200
TOKEN = "soak-token-not-a-secret-0123"
ROOT = Path(__file__).resolve().parents[1]

NOTES = {
    "recits/cooperative.md": "# Une coopérative et sa commune\n\nLa coopérative laitière et la "
    "commune ont signé une convention de trois ans. Chaque trimestre, un comité mixte mesure ce "
    "que la coopération apporte : emplois maintenus, circuits courts, bénévoles formés.\n",
    "charte/engagements.md": "# Nos engagements\n\nNous nous engageons à partager les résultats, "
    "à nommer un référent par structure et à revoir la convention chaque année.\n",
    "boite-a-outils/indicateurs.md": "# Indicateurs d'une coopération\n\nPour mesurer une "
    "coopération entre acteurs, retenez trois indicateurs : la valeur créée pour le territoire, "
    "la satisfaction des partenaires et le coût de coordination.\n",
}
QUESTIONS = [
    "Comment mesurer une coopération entre acteurs ?",
    "Que prévoit la convention entre la coopérative et la commune ?",
    "Quels engagements prendre dans une charte ?",
    "Quels indicateurs retenir pour un partenariat ?",
]


@dataclass
class SoakResult:
    clients: int
    requests: int
    seconds: float
    statuses: dict[str, int]
    by_kind: dict[str, dict[str, int]]
    server_errors: int
    transport_errors: int
    rss_before_mb: float
    rss_after_mb: float
    rss_peak_mb: float
    huge_body: str  # the status of one 36 MB body sent first ("reset": closed while sending)
    examples: list[str] = field(default_factory=list)


def _mixed(n: int, i: int) -> tuple[str, str, str, dict[str, Any]]:
    """(kind, method, path, httpx kwargs) of request ``i`` of client ``n``."""
    q = QUESTIONS[(n + i) % len(QUESTIONS)]
    hit = {"source": "recits/cooperative.md", "page": None, "chunk_id": "x", "text": "Z" * 50_000}
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("search", "POST", "/api/search", {"json": {"query": q, "k": 5}}),
        ("ask", "POST", "/api/ask", {"json": {"question": q}}),
        (
            "follow-up",
            "POST",
            "/api/ask",
            {
                "json": {
                    "question": "et pour une collectivité ?",
                    "history": [{"role": "user", "content": (q + " ") * 24}],
                }
            },
        ),
        ("stream", "POST", "/api/ask/stream", {"json": {"question": q}}),
        ("documents", "GET", "/api/documents", {}),
        ("health", "GET", "/api/health", {}),
        (
            "feedback",
            "POST",
            "/api/feedback",
            {
                "json": {
                    "question": q,
                    "answer": "R. [1]",
                    "useful": i % 2 == 0,
                    "citations": [hit],
                    "comment": "soak",
                }
            },
        ),
        (
            "oversized",
            "POST",
            "/api/search",
            {
                "content": b'{"query": "' + b"x" * 2_000_000 + b'"}',
                "headers": {"content-type": "application/json"},
            },
        ),
        (
            "chunked",
            "POST",
            "/api/ask",
            {"content": _chunks(), "headers": {"content-type": "application/json"}},
        ),
        ("kinds-flood", "POST", "/api/search", {"json": {"query": q, "kinds": ["recit"] * 40_000}}),
        ("kinds-5", "POST", "/api/search", {"json": {"query": q, "kinds": ["recit"] * 5}}),
        (
            "malformed",
            "POST",
            "/api/ask",
            {"content": b'{"question": "a', "headers": {"content-type": "application/json"}},
        ),
        ("wrong-type", "POST", "/api/search", {"json": {"query": 5, "k": "beaucoup"}}),
        ("long-question", "POST", "/api/ask", {"json": {"question": "é" * 5_000}}),
        (
            "history-flood",
            "POST",
            "/api/ask",
            {"json": {"question": q, "history": [{"role": "user", "content": "y" * 10_000}] * 20}},
        ),
        ("bad-token", "GET", "/api/admin/documents", {"headers": {"Authorization": "Bearer x"}}),
        ("traversal", "GET", "/sources/..%2f..%2fetc%2fpasswd", {}),
        ("page", "GET", "/", {}),
    ]
    return cases[(n * 7 + i) % len(cases)]


async def _chunks() -> AsyncIterator[bytes]:
    yield b'{"question": "partenariat", "kinds": ['
    for _ in range(100):  # 800 KB without Content-Length
        yield b'"recit",' * 1000
    yield b'"recit"]}'


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _client(
    http: httpx.AsyncClient, n: int, requests: int, seen: Counter[tuple[str, str]], out: list[str]
) -> None:
    for i in range(requests):
        kind, method, path, kwargs = _mixed(n, i)
        try:
            resp = await http.request(method, path, **kwargs)
            status = str(resp.status_code)
            if resp.status_code >= 500 and len(out) < 10:
                out.append(f"{kind} {path} -> {resp.status_code} {resp.text[:160]}")
        except httpx.HTTPError as exc:
            status = "transport"
            if len(out) < 10:
                out.append(f"{kind} {path} -> {type(exc).__name__}: {exc}")
        seen[(kind, status)] += 1


async def soak(base: str, pid: int, clients: int = 20, requests: int = 50) -> SoakResult:
    """Run the soak against ``base`` (a server whose process is ``pid``)."""
    clients, requests = min(clients, MAX_CLIENTS), min(requests, MAX_REQUESTS)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    seen: Counter[tuple[str, str]] = Counter()
    examples: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        for q in QUESTIONS:  # warm up: model loaded, caches filled, before "before"
            await http.post("/api/ask", json={"question": q})
        before = rss_mb(pid)
        huge = b'{"query": "partenariat", "kinds": [' + b'"recit",' * 4_500_000 + b'"recit"]}'
        try:
            got = await http.post("/api/search", content=huge,
                                  headers={"content-type": "application/json"})  # fmt: skip
            huge_status = str(got.status_code)
        except httpx.HTTPError:
            huge_status = "reset"
        del huge
        start = time.perf_counter()
        await asyncio.gather(*(_client(http, n, requests, seen, examples) for n in range(clients)))
        seconds = time.perf_counter() - start
    statuses: Counter[str] = Counter()
    by_kind: dict[str, dict[str, int]] = {}
    for (kind, status), count in sorted(seen.items()):
        statuses[status] += count
        by_kind.setdefault(kind, {})[status] = count
    return SoakResult(
        clients=clients,
        requests=sum(seen.values()),
        seconds=round(seconds, 1),
        statuses=dict(sorted(statuses.items())),
        by_kind=by_kind,
        server_errors=sum(c for s, c in statuses.items() if s.startswith("5")),
        transport_errors=statuses.get("transport", 0),
        rss_before_mb=round(before, 1),
        rss_after_mb=round(rss_mb(pid), 1),
        rss_peak_mb=round(rss_mb(pid, "VmHWM"), 1),
        huge_body=huge_status,
        examples=examples,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spawned_server(
    corpus: Path, index: Path, *, embedder: str | None = None, timeout_s: float = 600
) -> Iterator[tuple[str, int]]:
    """`alliance serve` in its own process on a free loopback port; yields (base URL, pid)
    once its index answers; stops it afterwards."""
    port = _free_port()
    env = {**os.environ, "ALLIANCE_ADMIN_TOKEN": TOKEN, "PYTHONPATH": str(ROOT),
           "GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "ui.cli", "--corpus", str(corpus), "--index", str(index)]
    if embedder:
        cmd += ["--embedder", embedder]
    cmd += ["serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode})")
            try:
                if httpx.get(base + "/api/health", timeout=2).json().get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {timeout_s} s")
            time.sleep(0.5)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_notes(corpus: Path) -> Path:
    for rel, text in NOTES.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")
    return corpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--corpus", type=Path, help="corpus to serve (default: a small tmp one)")
    p.add_argument("--embedder", default=None)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="alliance-soak-") as tmp:
        corpus = args.corpus or write_notes(Path(tmp) / "corpus")
        with spawned_server(corpus, Path(tmp) / "index", embedder=args.embedder) as (base, pid):
            result = asyncio.run(soak(base, pid, args.clients, args.requests))
    if args.json:
        print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
    else:
        print(f"{result.clients} clients, {result.requests} requests in {result.seconds} s "
              "(measured on a busy machine)")  # fmt: skip
        print(f"statuses: {result.statuses}")
        for kind, statuses in result.by_kind.items():
            print(f"  {kind:<14} {statuses}")
        print(f"server RSS: {result.rss_before_mb} MB before, {result.rss_after_mb} MB after, "
              f"{result.rss_peak_mb} MB peak")  # fmt: skip
        print(f"one 36 MB body: {result.huge_body}")
        print(f"5xx: {result.server_errors}, transport errors: {result.transport_errors}")
        for line in result.examples:
            print(f"  {line}")
    return 1 if result.server_errors or result.transport_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
