# The two commands a newcomer types: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/var/airflow
export GX_ANALYTICS_ENABLED := false

.PHONY: venv demo test up bench lock clean schema

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==26.3"
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

## Run one regional cycle on the embedded default (SQLite, outbox folder) and say where the results are.
demo: venv
	@$(BIN)/python scripts/demo.py

## Run the whole test suite (SQLite and the local PostgreSQL server).
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Start Airflow (api-server, scheduler, dag-processor, triggerer) on this project: http://localhost:8080
up: venv
	@$(BIN)/python scripts/demo.py --prepare-only
	@set -a; source var/demo.env; set +a; $(BIN)/airflow standalone

## Benchmarks that print their figures.
bench: venv
	$(BIN)/python -m reviews.bench

## Regenerate sql/ DDL from the SQLAlchemy metadata (the one source of truth).
schema: venv
	$(BIN)/python -m reviews.warehouse --write-ddl sql

## Re-pin requirements.txt from the current venv.
lock: venv
	{ echo "# Pinned runtime and test dependencies (pip freeze of a working install). Regenerate with: make lock"; $(BIN)/pip freeze --exclude-editable; } > requirements.txt

clean:
	rm -rf var .pytest_cache
