# Backoffice: `make run` starts the whole portal, `make test` runs every test. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# The embedded Redis runs only when no REDIS_URL is configured (environment or .env).
PROCESSES = web worker worker_long beat flower banner$(if $(shell . ./.env 2>/dev/null; echo $$REDIS_URL),, redis)

.PHONY: screenshots setup run demo test test-fast lint bench chaos cluster-smoke install lock lock-upgrade prod-smoke \
  browser libreoffice clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs exactly the pinned, hash-checked versions in requirements-test.lock (requirements.lock is the runtime
# subset that deploy/Dockerfile installs). lockcheck fails first when pyproject.toml lists something the locks lack.
$(VENV)/.installed: requirements.lock requirements-test.lock pyproject.toml | $(BIN)/python
	$(BIN)/python deploy/lockcheck.py
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-test.lock
	touch $@

install: $(VENV)/.installed

# Refresh the locks after editing dependencies in pyproject.toml: keeps every pin that still fits and resolves only
# what changed (`make lock-upgrade` moves everything to the newest allowed). pip-tools runs from a venv of its own so
# its dependencies never leak into .venv. Commit both files.
LOCK_VENV := .venv-lock
PIP_COMPILE = $(LOCK_VENV)/bin/pip-compile --quiet --allow-unsafe --generate-hashes --strip-extras \
  --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
$(LOCK_VENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet 'pip-tools>=7.4,<8'

lock: | $(LOCK_VENV)/bin/pip-compile
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra test --constraint requirements.lock --output-file requirements-test.lock pyproject.toml
	$(LOCK_VENV)/bin/python deploy/lockcheck.py

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

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
# honcho also ends everything when one process exits; deploy/keepalive.py restarts the one that died instead, saying
# which and why, so the others stay up. var/Procfile.run is deploy/Procfile with each line wrapped.
HONCHO = PATH="$(CURDIR)/$(BIN):$$PATH" WEB_PORT=$(PORT) exec $(BIN)/python -m backoffice.envfile --exec $(BIN)/honcho start \
	  --env /dev/null --procfile var/Procfile.run --app-root . --port $(PORT)

var/Procfile.run: deploy/Procfile deploy/keepalive.py
	mkdir -p var && $(PYTHON) deploy/keepalive.py --emit deploy/Procfile > $@

run: setup var/Procfile.run
	$(HONCHO) $(PROCESSES)

# make run plus demo customers driving the real endpoints (check-ins, orders paid or left to expire).
# Orders wait 2 minutes for payment (not 30), so the demo's unpaid orders visibly expire.
demo: setup var/Procfile.run
	ORDER_PAYMENT_TIMEOUT_MINUTES=$${ORDER_PAYMENT_TIMEOUT_MINUTES:-2} $(HONCHO) $(PROCESSES) traffic

# Debian's Chromium for the browser tests (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "browser tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi; }

# Debian's LibreOffice Calc, headless: the export tests open the files as a spreadsheet does.
libreoffice:
	@command -v soffice >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends libreoffice-calc-nogui >/dev/null; \
	  else echo "export tests need LibreOffice Calc: sudo apt-get install libreoffice-calc-nogui"; exit 1; fi; }

# pytest's exit 5 (no tests collected) means a broken suite, never a pass.
test: install browser libreoffice
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

# The production shape for real: nginx (deploy/nginx.conf), TLS, gunicorn, a worker per queue set, beat, Flower,
# DEBUG=0, PostgreSQL through PgBouncer (transaction pooling), Redis; driven over HTTPS, then stopped. Needs
# DATABASE_URL (PostgreSQL); installs Debian's nginx and pgbouncer when missing. tests/deploy runs it too.
prod-smoke: install
	$(BIN)/python deploy/prod_smoke.py

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
	rm -rf $(VENV) $(LOCK_VENV) var staticfiles
