# The two commands a newcomer types: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
## The demo's data and Airflow home; REVIEWS_VAR=/elsewhere (make or environment) puts them there.
export REVIEWS_VAR ?= $(CURDIR)/var
export AIRFLOW_HOME ?= $(REVIEWS_VAR)/airflow
export GX_ANALYTICS_ENABLED := false

.PHONY: venv browser demo test test-fast lint up airflow bench lock clean schema rekey

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
## First says which DAGs are paused (all, when new) and what unpausing each would do.
up: venv
	@$(BIN)/python scripts/demo.py --prepare-only
	@$(WITH_DEMO_ENV) $(BIN)/python scripts/paused_dags.py
	@$(WITH_DEMO_ENV) $(BIN)/airflow standalone

## The Airflow CLI on this project, with the settings `make up` and `make demo` use ($(REVIEWS_VAR)/demo.env,
## written on first use): make airflow ARGS="dags list". JSON for --conf or --dag-run-conf goes in
## CONF, passed as one argument after ARGS (no escaping):
##   make airflow ARGS="dags trigger bulletin_circulation --conf" CONF='{"period_end": "2024-06-30"}'
WITH_DEMO_ENV = set -a; source "$(REVIEWS_VAR)/demo.env"; set +a; PATH="$(CURDIR)/$(BIN):$$PATH"
airflow: export REVIEWS_CLI_CONF := $(CONF)
airflow: venv
	@test -f "$(REVIEWS_VAR)/demo.env" -a -f "$(REVIEWS_VAR)/airflow/airflow.db" || $(BIN)/python scripts/demo.py --prepare-only >&2
	@$(WITH_DEMO_ENV) $(BIN)/python scripts/airflow_cli.py $(ARGS) $${REVIEWS_CLI_CONF:+"$$REVIEWS_CLI_CONF"}

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
