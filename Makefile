# Backoffice: `make run` starts the whole portal, `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The embedded Redis runs only when no REDIS_URL is configured (environment or .env).
PROCESSES = web worker beat flower banner$(if $(shell . ./.env 2>/dev/null; echo $$REDIS_URL),, redis)

.PHONY: screenshots setup run demo test test-fast lint bench chaos cluster-smoke install browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet '.[test]'
	touch $@

install: $(VENV)/.installed

.env:
	$(BIN)/python -m backoffice.envfile > .env
	@echo "wrote .env with fresh secrets (never commit it)"

# Migrate, collect static files, install roles, default schedules, the superuser and demo data (idempotent).
setup: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py setup_portal --demo

# honcho would load .env on top of the environment; envfile --exec loads it beneath, so the real environment wins.
# The `banner` process prints the portal's address and how to sign in once /healthz is ok.
HONCHO = PATH="$(CURDIR)/$(BIN):$$PATH" WEB_PORT=$(PORT) exec $(BIN)/python -m backoffice.envfile --exec $(BIN)/honcho start \
	  --env /dev/null --procfile deploy/Procfile --app-root . --port $(PORT)

run: setup
	$(HONCHO) $(PROCESSES)

# make run plus demo customers driving the real endpoints (check-ins, orders paid or left to expire).
# Orders wait 2 minutes for payment (not 30), so the demo's unpaid orders visibly expire.
demo: setup
	ORDER_PAYMENT_TIMEOUT_MINUTES=$${ORDER_PAYMENT_TIMEOUT_MINUTES:-2} $(HONCHO) $(PROCESSES) traffic

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

# pytest's exit 5 (no tests collected) means a broken suite, never a pass.
test: install browser
	@$(BIN)/python -m pytest $(ARGS); status=$$?; \
	  if [ $$status -eq 5 ]; then echo "pytest collected no tests: a broken suite, not a pass" >&2; exit 1; fi; \
	  exit $$status

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

# Refresh the README's screenshots (docs/) from the browser walk of every page for every role; the whole walk's
# pictures land in docs/walk/ (not committed) for a look at every page.
screenshots: install browser
	SCREENSHOTS_DIR=docs $(BIN)/python -m pytest tests/ops/test_browser_walk.py -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY),)

# Break PostgreSQL, Redis, workers and beat under load, on throwaway instances of its own; fails on any loss or
# duplicate (`make chaos ARGS=--short` is what the test suite runs; `ARGS=--only redis_down` picks scenarios).
chaos: install
	$(BIN)/python -m tests.chaos $(ARGS)

# Worker hosts as network namespaces draining one backlog; one host's link is cut mid-run (needs root).
cluster-smoke: install
	$(BIN)/python -m tests.chaos.cluster $(ARGS)

clean:
	rm -rf $(VENV) var staticfiles
