# Two commands: `make serve` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint typecheck bench clean-state venv venv-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

## serve: install, make sure Docker runs, write .env if needed, run on 0.0.0.0:8080
serve: venv
	bash scripts/ensure-docker.sh
	bash scripts/ensure-env.sh
	$(BIN)/dockyard serve

## test: the same set-up, plus test images, a local registry and a throwaway PostgreSQL, then the suite
test: venv-dev
	bash scripts/ensure-docker.sh
	bash scripts/test-images.sh
	bash scripts/test-registry.sh
	bash scripts/ensure-chromium.sh
	bash scripts/run-tests.sh

lint: venv-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: venv-dev
	$(BIN)/mypy

## bench: benchmarks against raw Compose and the raw engine (not part of `make test`)
bench: venv-dev
	bash scripts/ensure-docker.sh
	bash scripts/test-images.sh
	$(BIN)/python bench/run.py
