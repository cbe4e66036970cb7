# The two commands of the README: `make run` (the product on its embedded defaults) and
# `make test` (lint, migrations check and the whole suite against the local PostgreSQL and Redis).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

# Tests talk to the real services of this machine (ARCHITECTURE.md); override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/hfs_followup
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
# makemigrations only needs a server to talk to; the maintenance database always exists.
CHECK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
PYTEST_ARGS ?=

.PHONY: venv run test lint format migrations-check demo clean bench

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

# Test tools from npm (axe-core for the accessibility tests), pinned by package-lock.json.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

demo: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --if-empty --patients 300
	$(BIN)/python manage.py sessions_generate
	$(BIN)/python manage.py follow_up_refresh --only-unplanned
	$(BIN)/python manage.py demo_bookings
	$(BIN)/python manage.py demo_staff
	$(BIN)/python manage.py demo_calls

run: demo
	PATH="$(BIN):$$PATH" $(BIN)/honcho --procfile Procfile start

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrations-check: venv
	DATABASE_URL=$(CHECK_DATABASE_URL) $(BIN)/python manage.py makemigrations --check --dry-run

# The fast tests run on both cores; the slow ones (real worker, beat, Redis and SMTP processes,
# timing-sensitive) run after them, alone.
test: lint migrations-check $(NODE_STAMP)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -n 2 -m "not slow" $(PYTEST_ARGS)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -m slow $(PYTEST_ARGS)

# Benchmarks (BENCHMARKS.md), never part of `make test`: their own database and Redis db. The first
# run seeds BENCH_PATIENTS demo patients (minutes at 100,000); later runs reuse them.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/hfs_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/9
BENCH_PATIENTS ?= 100000
BENCH_ARGS ?=
BENCH_ENV = BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) BENCH_REDIS_URL=$(BENCH_REDIS_URL)

bench: venv
	command -v wrk >/dev/null || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(BENCH_ENV) $(BIN)/python -m bench.prepare --patients $(BENCH_PATIENTS)
	$(BENCH_ENV) $(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache node_modules
