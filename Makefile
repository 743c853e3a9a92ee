# Every target bootstraps .venv from pyproject.toml on its own: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format typecheck run bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tgmon needs Python 3.11 or newer: set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/tgmon demo

test: lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

run: $(STAMP)
	$(BIN)/tgmon run

bench: $(STAMP)
	$(BIN)/python bench/rules.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/alerts.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
