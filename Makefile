# EventPro developer tasks. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The PostgreSQL, Redis and MariaDB servers the tests use (a fresh schema, key prefix or
# database per test). Elsewhere a server that is not set or does not answer skips its
# tests; under CI=true it fails them.
export EVENTPRO_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export EVENTPRO_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
export EVENTPRO_TEST_MYSQL_URL ?= mysql://root@127.0.0.1:3306/test

.DEFAULT_GOAL := help
.PHONY: help install tools fmt lint typecheck test test-contract test-all cov serve worker demo bench loadtest check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# The venv is rebuilt from the lockfile whenever the lockfile or pyproject changes.
# --no-deps: the lockfile is complete, so pip must not resolve; pip 23's resolver would
# take a newer release for an extra (pytest-cov's coverage[toml]) and refuse its hash.
$(STAMP): requirements.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip check --disable-pip-version-check
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e ".[postgres,redis,mysql,replay,aws]"
	touch $(STAMP)

install: $(STAMP) ## create .venv from the lockfile (when missing or stale)

# Page tests drive Debian's Chromium through Playwright (browser downloads are not used);
# `bench --loadgen` measures the load generator against wrk.
tools: ## install Debian's chromium and wrk when missing (needs root and apt)
	@for tool in chromium wrk; do command -v $$tool >/dev/null || { [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null && apt-get install -y -qq $$tool >/dev/null; } \
		|| echo "$$tool missing: apt install $$tool" >&2; done

fmt: install ## format the code
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

lint: install ## ruff: style and complexity
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: install ## mypy --strict over src
	$(BIN)/mypy

# pytest exits 5 when it collected no test: that is a failure, never a pass.
test: install tools ## the test suite (memory + sqlite, real server processes)
	$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

test-contract: install ## only the adapter conformance suite
	$(BIN)/pytest tests/contract $(PYTEST_ARGS)

test-all: test ## every test, including slow ones

cov: install ## tests with branch coverage, child processes included
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

serve: install ## run the API with in-process workers on the embedded default
	$(BIN)/eventpro serve

worker: install ## run a standalone worker
	$(BIN)/eventpro worker

demo: install ## a simulated flash sale: 50,000 buyers for 10,000 tickets
	$(BIN)/eventpro demo

bench: install ## the admission / decision benchmark against a bare Starlette baseline
	$(BIN)/eventpro bench

loadtest: install ## the load generator against EVENTPRO_URL
	$(BIN)/eventpro loadtest $${EVENTPRO_URL:-http://127.0.0.1:8000}

check: lint typecheck test ## lint, types and tests: what CI runs

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
