# The two commands a newcomer types: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/var/airflow
export GX_ANALYTICS_ENABLED := false

.PHONY: venv browser demo test test-fast lint up bench lock clean schema rekey

venv: $(STAMP)

## The runtime pins (requirements.txt, what the image has) and the tests', benchmarks' and lint's on top.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml dev/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e . -e dev
	@touch $(STAMP)

## Headless Chromium (Debian's package) prints the bulletin PDFs and runs the accessibility test.
## Idempotent: installs only when missing (needs root, as on CI; elsewhere install it yourself).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v "$$REVIEWS_CHROMIUM" >/dev/null 2>&1 || \
	  { echo "installing chromium (Debian package)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## Run one regional cycle on the embedded default (SQLite, outbox folder) and say where the results are.
demo: venv browser
	@$(BIN)/python scripts/demo.py

## Run the whole test suite (SQLite and the local PostgreSQL server).
test: venv browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## While you work (under 2 minutes): tests/unit without PostgreSQL, a browser, whole DAG runs or
## slow tests (the marks in pyproject.toml; tests/conftest.py marks PostgreSQL users). CI runs `make test`.
FAST_MARKS := not postgres and not slow and not browser and not distributed
test-fast: venv
	$(BIN)/python -m pytest tests/unit -m "$(FAST_MARKS)" $(PYTEST_ARGS)

## Lint with ruff (rules in pyproject.toml; no formatting, no import sorting).
lint: venv
	$(BIN)/ruff check .

## Start Airflow (api-server, scheduler, dag-processor, triggerer) on this project: http://localhost:8080
up: venv
	@$(BIN)/python scripts/demo.py --prepare-only
	@set -a; source var/demo.env; set +a; PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/airflow standalone

## Benchmarks that print their figures.
bench: venv
	$(BIN)/python -m reviews_dev.bench $(BENCH_ARGS)

## Rotate the pseudonymisation key: re-key the warehouse from the raw copies, in one transaction.
## Keys from the environment only: REVIEWS_REKEY_OLD_KEY, REVIEWS_REKEY_NEW_KEY (docs/security.md).
## Pause the DAGs first; REKEY_ARGS="--dry-run" checks everything and rolls back.
rekey: venv
	$(BIN)/python -m reviews.admin.rekey $(REKEY_ARGS)

## Regenerate sql/ DDL from the SQLAlchemy metadata (the one source of truth).
schema: venv
	$(BIN)/python -m reviews.core.warehouse --write-ddl sql

## Re-pin requirements.txt (runtime: the names in requirements.in and all they need) and
## requirements-dev.txt (requirements-dev.in's, less the runtime's) at the versions installed in the venv.
## To add a dependency: name it in the right .in file, pip install it into .venv, make lock.
lock: venv
	$(BIN)/python scripts/lock_requirements.py

clean:
	rm -rf var .pytest_cache
