# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
# The stamp is keyed on the files that decide what gets installed.
DEPS_HASH := $(shell cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -c1-16)

.PHONY: demo test bench lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP).$(DEPS_HASH): | $(BIN)/python
	$(BIN)/pip install --upgrade pip >/dev/null
	# torch first, exactly this version: it is the local CPU wheel (a looser spec pulls CUDA).
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -c constraints.txt -e ".[dev]"
	rm -f $(STAMP).*
	touch $@

install: $(STAMP).$(DEPS_HASH)

demo: install
	$(BIN)/kgdx demo

test: install
	@# the viewer's browser test drives Debian's chromium; as root, install it when missing
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || echo "chromium not installed: tests/viewer will skip"; fi
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf .kgdx .pytest_cache
