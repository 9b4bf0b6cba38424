# nvlm developer entry points. `make demo` and `make test` set everything up on their own:
#   .venv (Python >= 3.11)  ->  pip install -e '.[dev]'  ->  Horovod 0.28.1 (built once, cached)
# Stamp files under .venv/.stamps make repeated runs cheap; see docs/setup.md.
#
#   make test PYTEST_ARGS='-k presets -x'
#   make demo MODEL=electra
#   make demo TASK=classify MODEL=electra
#   make lint

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= dev
HOROVOD_VERSION ?= 0.28.1
WHEEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/nvlm/wheels
MODEL ?= bert
TASK ?=
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
# Fresh clones lack empty folders (git keeps none), and ruff fails on a missing path.
LINT_PATHS := $(wildcard nvlm tests benchmarks tools)

.PHONY: help venv install horovod test lint format demo clean distclean

help:
	@echo "make test      set up .venv (project + Horovod) and run pytest (PYTEST_ARGS=...)"
	@echo "make demo      set up .venv and run tools/demo.sh (MODEL=bert|electra|transformer-xl, TASK=classify)"
	@echo "make lint      ruff check + ruff format --check over $(LINT_PATHS)"
	@echo "make format    ruff format + ruff check --fix"
	@echo "make venv | install | horovod   the set-up steps one by one"
	@echo "make clean     remove caches, build output and demo-run/;  make distclean: also .venv"
	@echo "variables: PYTHON=$(PYTHON) VENV=$(VENV) EXTRAS=$(EXTRAS) WHEEL_CACHE=$(WHEEL_CACHE)"

venv: $(PY)
install: $(STAMPS)/install
horovod: $(STAMPS)/horovod

# Create the venv. Debian's python3 has no ensurepip without python3.X-venv: add it when root.
$(PY):
	@command -v $(PYTHON) >/dev/null || { \
	  echo "make: nvlm needs Python >= 3.11, but '$(PYTHON)' is not found; run make PYTHON=/path/to/python3.11 ..." >&2; \
	  exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: nvlm needs Python >= 3.11, but '$(PYTHON)' is $$($(PYTHON) -V 2>&1); run make PYTHON=/path/to/python3.11 ..." >&2; \
	  exit 1; }
	@if ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  pkg=python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> apt-get install $$pkg (needed by python -m venv)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg; \
	  else \
	    echo "make: '$(PYTHON)' cannot create a venv (no ensurepip); install $$pkg" >&2; exit 1; \
	  fi; \
	fi
	@echo "==> creating $(VENV) with $$($(PYTHON) -V)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Re-install only when the project's metadata changes (editable install: code changes need none).
$(STAMPS)/install: pyproject.toml | $(PY)
	@echo "==> pip install -e '.[$(EXTRAS)]'"
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@mkdir -p $(STAMPS) && touch $@

# The script is a no-op when the right build is already installed; the stamp saves even that.
$(STAMPS)/horovod: $(STAMPS)/install tools/build_horovod.sh
	NVLM_PYTHON=$(abspath $(PY)) NVLM_HOROVOD_VERSION=$(HOROVOD_VERSION) NVLM_WHEEL_CACHE=$(WHEEL_CACHE) \
	  bash tools/build_horovod.sh
	@touch $@

test: $(STAMPS)/horovod
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMPS)/install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

format: $(STAMPS)/install
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

demo: $(STAMPS)/horovod
	PATH="$(abspath $(VENV))/bin:$$PATH" MODEL=$(MODEL) TASK=$(TASK) bash tools/demo.sh

clean:
	rm -rf demo-run build dist .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
