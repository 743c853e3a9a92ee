# Every target bootstraps .venv from pyproject.toml on its own: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format typecheck run bench soak audit wheelhouse image-test clean

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
	$(BIN)/hadolint Dockerfile

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

# The reliability suite's long form (50,000 posts and 20 SIGKILLs, longer outages, 5,000 fuzz examples each):
# 10 to 30 minutes; it rewrites docs/reliability.md with what it measured. `make test` runs its bounded form.
soak: $(STAMP)
	TGMON_SOAK=1 $(BIN)/pytest tests/reliability -p no:randomly -q

# pip-audit asks PyPI's JSON API about each release installed in .venv (tgmon itself is skipped: it is not
# on PyPI). Where that API is out of reach, or a mirror serves no per-release pages, pip-audit would skip
# every package and still print "No known vulnerabilities found": so one release page is asked for first,
# and --strict fails on any package it could not audit.
AUDIT_PROBE := https://pypi.org/pypi/pip/24.0/json

audit: $(STAMP)
	@if ! err=$$($(BIN)/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)' $(AUDIT_PROBE) 2>&1); then \
	  echo "make audit: the vulnerability service is unreachable from here, nothing was audited:" \
	    "pip-audit asks PyPI's JSON API about each installed release, and $(AUDIT_PROBE) gave: $$(echo "$$err" | tail -n1)" >&2; \
	  exit 2; \
	fi
	$(BIN)/pip-audit --strict --skip-editable --progress-spinner off

# The image installs from build/wheelhouse/ alone (its build reaches no package index): the project and
# every runtime requirement as wheels for the image's Python and for the oldest glibc it may be based on
# (bookworm's 2.36; the official python:3.11-slim is newer). Two steps, because pip chooses wheels for
# another platform only with --only-binary=:all:, and some requirements (pyaes) are source releases only:
#   1. `pip wheel` makes wheels of everything for this machine, the pure-Python source releases included;
#   2. `pip download` takes the set again for the image's tags, finding those pure wheels in step 1's folder.
WHEELHOUSE   := build/wheelhouse
IMAGE_PYTHON ?= 3.11
IMAGE_GLIBC  ?= 36
WHEEL_ARCH   ?= $(shell uname -m | sed 's/^arm64$$/aarch64/')
WHEEL_TAGS    = --python-version $(IMAGE_PYTHON) --implementation cp --abi cp$(subst .,,$(IMAGE_PYTHON)) \
                $(foreach v,$(shell seq 5 $(IMAGE_GLIBC)),--platform manylinux_2_$(v)_$(WHEEL_ARCH)) \
                --platform manylinux1_$(WHEEL_ARCH) --platform manylinux2010_$(WHEEL_ARCH) --platform manylinux2014_$(WHEEL_ARCH)

wheelhouse: $(STAMP)
	rm -rf $(WHEELHOUSE) build/wheels-host build/lib build/bdist.*
	$(BIN)/pip wheel --quiet --wheel-dir build/wheels-host '.[apprise]'
	@echo "$(BIN)/pip download --only-binary=:all: (CPython $(IMAGE_PYTHON), manylinux up to glibc 2.$(IMAGE_GLIBC), $(WHEEL_ARCH)) ..."
	@$(BIN)/pip download --quiet --only-binary=:all: $(WHEEL_TAGS) --find-links build/wheels-host \
	  --dest $(WHEELHOUSE) "$$(ls build/wheels-host/tgmon-*.whl)[apprise]"
	rm -rf build/wheels-host
	@echo "$(WHEELHOUSE): $$(ls $(WHEELHOUSE) | wc -l) wheels, $$(du -sh $(WHEELHOUSE) | cut -f1)"

# Builds the image with buildah on a Debian-made base and runs tgmon in it: no Docker engine, no registry.
image-test: wheelhouse
	bash tools/image-test.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
