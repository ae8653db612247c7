# Two commands: `make run` starts the SOC on its embedded store, `make test` passes
# the tests. Both set everything up first and are idempotent; they share .venv/.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml scripts/bootstrap.sh | sha1sum | cut -c1-12)

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	@PYTHON="$(PYTHON)" bash scripts/bootstrap.sh
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

run: setup
	$(BIN)/soc run

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check collectors soc tests bench
	$(BIN)/mypy

bench: setup
	@set -e; for b in bench/ingest.py bench/detect.py bench/es_ingest.py bench/api.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
