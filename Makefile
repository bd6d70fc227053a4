# Two commands for a new machine: `make serve` (set up + start the sandbox), `make test` (set up + test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint lint-specs clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/python -m mock_server serve $(ARGS)

node_modules/.bin/redocly: package.json package-lock.json $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --silent
	touch $@

lint-specs: node_modules/.bin/redocly
	PATH="$(CURDIR)/$(BIN):$$PATH" node_modules/.bin/redocly lint --format=stylish specs/*.yaml

lint: $(STAMP) lint-specs
	$(BIN)/ruff check .
	$(BIN)/mypy mock_server

test: $(STAMP) lint-specs
	$(BIN)/ruff check .
	$(BIN)/mypy mock_server
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) node_modules .sandbox
