"""Bounded load test of a local Alliance server: N concurrent clients x M requests mixing
/api/search and /api/ask; prints p50/p95/max latency per endpoint and the error count.

    .venv/bin/python tools/load_test.py --url http://127.0.0.1:7860 --clients 20 --requests 50

Only loopback servers are accepted (this is a load generator, not a scanner). Exit status 1
when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import statistics
import sys
import time
from collections import defaultdict
from urllib.parse import urlsplit

import httpx

QUESTIONS = [
    "Comment construire un partenariat entre une association et une entreprise ?",
    "Comment évaluer l'impact d'un partenariat ?",
    "Quels sont les quatre modes de partenariat ?",
    "Comment financer l'ingénierie d'une alliance ?",
    "Que doit contenir une convention de partenariat ?",
    "Quel est le rôle d'une fondation dans une alliance territoriale ?",
    "Comment une collectivité peut-elle s'engager dans une alliance ?",
    "Qu'est-ce que l'ODD 17 ?",
    "Quels sont les engagements de la charte ?",
    "Quelle est l'histoire du RAMEAU ?",
    "Comment mesurer la performance d'un partenariat ?",
    "Quel cadre juridique pour le mécénat de compétences ?",
]
MAX_CLIENTS = 100
MAX_REQUESTS = 1000


def check_loopback(url: str) -> str:
    """The base URL if it points at this machine, else SystemExit."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http":
        raise SystemExit(f"load_test: only http:// URLs on 127.0.0.1 are allowed, got {url!r}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"load_test: refusing non-loopback host {host!r} (127.0.0.1 only)")
    return url.rstrip("/")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[idx]


async def client_run(
    client: httpx.AsyncClient,
    n: int,
    requests: int,
    latencies: dict[str, list[float]],
    errors: list[str],
) -> None:
    for i in range(requests):
        question = QUESTIONS[(n * 7 + i) % len(QUESTIONS)]
        if (n + i) % 2 == 0:
            path, body = "/api/search", {"query": question, "k": 5}
        else:
            path, body = "/api/ask", {"question": question}
        start = time.perf_counter()
        try:
            resp = await client.post(path, json=body)
            ok = resp.status_code == 200 and ("hits" in resp.json() or "answer" in resp.json())
            detail = f"{path} -> {resp.status_code} {resp.text[:120]}"
        except (httpx.HTTPError, ValueError) as exc:
            ok, detail = False, f"{path} -> {type(exc).__name__}: {exc}"
        latencies[path].append(time.perf_counter() - start)
        if not ok:
            errors.append(detail)


async def run(base: str, clients: int, requests: int, timeout: float) -> int:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:
        health = await client.get("/api/health")
        print(f"server: {health.json()}")
        start = time.perf_counter()
        await asyncio.gather(
            *(client_run(client, n, requests, latencies, errors) for n in range(clients))
        )
        wall = time.perf_counter() - start
    total = sum(len(v) for v in latencies.values())
    print(f"{clients} clients x {requests} requests = {total} in {wall:.1f} s "
          f"({total / wall:.1f} req/s)")  # fmt: skip
    print(f"{'endpoint':<12} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    everything = [x for v in latencies.values() for x in v]
    for name, values in [*sorted(latencies.items()), ("all", everything)]:
        print(
            f"{name:<12} {len(values):>5} {statistics.median(values) * 1000:>8.0f} "
            f"{percentile(values, 0.95) * 1000:>8.0f} {max(values) * 1000:>8.0f}"
        )
    print(f"errors: {len(errors)}")
    for e in errors[:10]:
        print(f"  {e}")
    return 1 if errors else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--url", default="http://127.0.0.1:7860")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--requests", type=int, default=50, help="requests per client")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    args = p.parse_args(argv)
    base = check_loopback(args.url)
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.requests <= MAX_REQUESTS:
        p.error(f"clients must be 1..{MAX_CLIENTS} and requests 1..{MAX_REQUESTS}")
    return asyncio.run(run(base, args.clients, args.requests, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
