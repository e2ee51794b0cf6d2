# Two commands on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= $(wildcard airlock.toml)

.PHONY: serve test lint typecheck unit clean help

help:
	@echo "make serve   create .venv, install, run the proxy on 127.0.0.1:8080"
	@echo "make test    install the test extras, lint, type-check and run the whole suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

serve: $(VENV)/.installed
	$(BIN)/airlock serve $(if $(CONFIG),--config $(CONFIG))

lint: $(VENV)/.installed-test
	$(BIN)/ruff check proxy mirror_store tests
	$(BIN)/ruff format --check proxy mirror_store tests

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -m "not network"

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
