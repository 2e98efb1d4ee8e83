# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
# pytest workers for `make test` (pytest-xdist): one per core; PYTEST_WORKERS=0 runs the suite in one process.
PYTEST_WORKERS ?= auto

.PHONY: run test install install-test browser lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## run: set up, migrate, seed the demo and serve it at http://$(HOST) (with the task worker and a webhook receiver)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@# The background worker (webhook deliveries, the retention purge), the hourly daily-task check (enqueues
	@# the purge once a day from 03:00 UTC) and the demo's local webhook receiver stop with the server.
	trap 'kill 0' EXIT; \
	$(BIN)/python manage.py db_worker & \
	while true; do $(BIN)/python manage.py run_daily --verbosity 0; sleep 3600; done & \
	$(BIN)/python manage.py webhook_receiver --port 8001 & \
	$(BIN)/python manage.py runserver $(HOST)

## browser: Debian's Chromium for the Playwright journeys (Playwright cannot download browsers here)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for browser tests…"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

## test: install what the tests need and run the whole suite (DATABASE_URL picks PostgreSQL)
test: install-test browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles test-artifacts
