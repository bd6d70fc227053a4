# Two commands for a new machine: `make serve` (set up + start the sandbox), `make test` (set up + test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# STAMP: runtime dependencies only (what `make serve` needs); TEST_STAMP adds the test extras
# (pytest, ruff, mypy, Node.js for the spec lint, selenium).
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install install-test serve test lint lint-specs system-tools browsers bench-tools clean

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

# What the tests need from Debian besides .venv: chromium + chromium-driver (the browser tests
# drive the system browser, no download), jq (the docs' shell blocks) and redis-server (the
# tests of `serve --store redis://` start a real one), haproxy (the Redis soak's balancer,
# tests/redis_soak.py), nginx (a real limit_req for the rate-limit fingerprint). Installed with apt-get
# when absent and when we are root; otherwise the tests that need them say loudly why they skip.
SYSTEM_TOOLS := chromium chromedriver jq curl openssl redis-server haproxy nginx
SYSTEM_PACKAGES := chromium chromium-driver jq curl openssl redis-server haproxy nginx
system-tools:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing for the tests (apt-get: $(SYSTEM_PACKAGES))"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null) \
		|| echo "WARNING: could not install$$missing: the tests that need them will be SKIPPED"; \
	else echo "WARNING:$$missing absent and not root: the tests that need them will be SKIPPED" \
		"(as root: apt-get install $(SYSTEM_PACKAGES))"; fi

browsers: system-tools

# Optional, for `python -m bench` only (no test needs them, `make test` does not install them):
# wrk, the load generator the benchmark prefers (it falls back to a Python one, which adds latency).
BENCH_TOOLS := wrk
BENCH_PACKAGES := wrk
bench-tools:
	@missing=""; for t in $(BENCH_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_PACKAGES) >/dev/null) \
		|| echo "WARNING: could not install$$missing: python -m bench uses its Python load generator"; \
	else echo "WARNING:$$missing absent and not root: python -m bench uses its Python load generator" \
		"(as root: apt-get install $(BENCH_PACKAGES))"; fi

node_modules/.bin/redocly: package.json package-lock.json $(TEST_STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" npm ci --no-audit --no-fund --silent
	touch $@

lint-specs: node_modules/.bin/redocly
	PATH="$(CURDIR)/$(BIN):$$PATH" node_modules/.bin/redocly lint --format=stylish specs/*.yaml

lint: $(TEST_STAMP) lint-specs
	$(BIN)/ruff check .
	$(BIN)/mypy mock_server load contract

test: $(TEST_STAMP) lint-specs system-tools
	$(BIN)/ruff check .
	$(BIN)/mypy mock_server load contract
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not timing" --durations=15
	$(BIN)/python -m pytest -m timing --durations=10

clean:
	rm -rf $(VENV) node_modules .sandbox artifacts
