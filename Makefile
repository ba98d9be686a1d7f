# Two commands on a fresh machine: `make serve` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := $(wildcard src tests bench)

.PHONY: serve test lint typecheck check bench clean

$(STAMP): pyproject.toml
	@echo "Installing Cloudlet and its dependencies into $(VENV) (first run, or pyproject.toml changed)..."
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/cloudlet serve

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Device hot paths next to their baselines (bare ASGI, StaticFiles, nginx) with wrk.
bench: $(STAMP)
	@command -v wrk >/dev/null && { command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq wrk nginx >/dev/null; }
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/run.py
