# Two commands for a new machine: `make serve` (set up + start the sandbox), `make test` (set up + test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# STAMP: runtime dependencies only (what `make serve` needs); TEST_STAMP adds the test extras
# (pytest, ruff, mypy, Node.js for the spec lint, selenium).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-test serve test lint lint-specs browsers clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

serve: $(STAMP)
	$(BIN)/python -m mock_server serve $(ARGS)

# The browser tests drive Debian's chromium through its chromedriver (no browser download).
# Installed with apt-get when absent and when we are root; otherwise the tests say why they skip.
browsers:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (apt-get) for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "WARNING: could not install chromium/chromium-driver: the browser tests will be SKIPPED"; \
	else echo "WARNING: chromium/chromedriver absent and not root: the browser tests will be SKIPPED" \
		"(as root: apt-get install chromium chromium-driver)"; fi

node_modules/.bin/redocly: package.json package-lock.json $(TEST_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --silent
	touch $@

lint-specs: node_modules/.bin/redocly
	PATH="$(CURDIR)/$(BIN):$$PATH" node_modules/.bin/redocly lint --format=stylish specs/*.yaml

lint: $(TEST_STAMP) lint-specs
	$(BIN)/ruff check .
	$(BIN)/mypy mock_server

test: $(TEST_STAMP) lint-specs browsers
	$(BIN)/ruff check .
	$(BIN)/mypy mock_server
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) node_modules .sandbox artifacts
