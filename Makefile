# ShelfWise Workbook — one entry point for learners, contributors and CI.
# `make lab` sets everything up and opens the notebooks; `make test` runs every check CI runs.

VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.synced
# Use the machine's Python; never download an interpreter.
export UV_PYTHON_DOWNLOADS := never
# MkDocs prints a banner about its successor on every build; the site is fine as it is.
export NO_MKDOCS_2_WARNING := 1
# Notebooks run in parallel when there are cores for it.
JOBS ?= 2
# JupyterLab's port (`make lab PORT=8890`).
PORT ?= 8888

# The Python that builds .venv: python3 when it is 3.11+, else the newest python3.1x on PATH
# (macOS's python3 is 3.9). `make setup PYTHON=/path/to/python3.12` chooses another.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell for p in python3 python3.14 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; \
	done),python3)
endif
_VERSION := import sys; print("%d.%d" % sys.version_info[:2])
PYTHON_VERSION := $(shell $(PYTHON) -c '$(_VERSION)' 2>/dev/null)
VENV_VERSION := $(shell $(PY) -c '$(_VERSION)' 2>/dev/null)

.PHONY: help setup lab serve bench docs test lint typecheck test-app test-workbook test-notebooks \
	checkpoints lock browser clean FORCE

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

# --- setup ------------------------------------------------------------------------------

# A .venv made by another Python, or whose python no longer runs (a removed or upgraded
# interpreter), is rebuilt: its stamp alone would keep it "up to date" forever.
ifneq ($(VENV_VERSION),$(PYTHON_VERSION))
$(STAMP): FORCE
endif

$(STAMP): requirements.lock pyproject.toml
	@[ -n "$(PYTHON_VERSION)" ] && $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make setup: ShelfWise needs Python 3.11 or newer; $(PYTHON) is" \
			"$(or $(PYTHON_VERSION),missing) (install one, or run make setup PYTHON=/path/to/python3.11)"; \
			exit 1; }
	@if [ -e $(VENV) ] && [ "$(VENV_VERSION)" != "$(PYTHON_VERSION)" ]; then \
		echo "$(VENV) was made by another Python ($(or $(VENV_VERSION),its python does not run));" \
			"rebuilding it with $(PYTHON) ($(PYTHON_VERSION))"; \
		rm -rf $(VENV); fi
	@echo "setting up $(VENV) from requirements.lock with $(PYTHON) ($(PYTHON_VERSION)) …"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check \
		"uv==$$(sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements.lock)"
	@$(UV) pip sync --quiet --python $(PY) requirements.lock
	@$(UV) pip install --quiet --python $(PY) --no-deps --editable .
	@touch $@

setup: $(STAMP)  ## create .venv with the locked dependencies

lock: setup  ## re-resolve requirements.lock (everything) and requirements-runtime.lock (the image's)
	$(UV) pip compile pyproject.toml --group dev --group workbook --group docs \
		--generate-hashes --universal --python-version 3.11 --no-header --quiet \
		-o requirements.lock
	$(UV) pip compile pyproject.toml -c requirements.lock \
		--generate-hashes --universal --python-version 3.11 --no-header --quiet \
		-o requirements-runtime.lock

# --- the main jobs ----------------------------------------------------------------------

lab: setup  ## open JupyterLab on the notebooks (PORT=8888)
	@flags="--port=$(PORT)"; \
	[ "$$(id -u)" = 0 ] && flags="$$flags --allow-root"; \
	if [ "$$(uname)" != Darwin ] && [ -z "$$DISPLAY$$WAYLAND_DISPLAY$$BROWSER" ]; then \
		flags="$$flags --no-browser"; \
		echo "no browser on this machine: open the http://127.0.0.1:$(PORT)/lab?token=… URL JupyterLab prints below"; \
	fi; \
	set -x; $(VENV)/bin/jupyter lab notebooks/ $$flags

# PART=N serves checkpoint N: uvicorn's --app-dir puts it first on sys.path (before the
# finished app installed in .venv) and the scratch database is git-ignored. From part 9 on the
# API needs a login: `python -m shelfwise create-demo` opens two demo tenants first (it is safe
# to repeat, and prints the credentials).
# From part 12 on the app logs JSON for a log collector; at a terminal, aligned text reads
# better (SHELFWISE_LOG_FORMAT=json make serve for the production format).
serve: export SHELFWISE_LOG_FORMAT ?= console
serve: setup  ## run the service on SQLite at http://127.0.0.1:8000/docs (PART=5: part 5's app)
ifdef PART
	@app=$$($(PY) -m workbook app-dir '$(PART)') || exit 2; \
	data=.workspaces/serve-part-$(PART); mkdir -p $$data; \
	echo "serving part $(PART) from $$app/shelfwise, database $$data/shelfwise.db"; \
	export PYTHONPATH=$$app SHELFWISE_DATABASE_URL=sqlite+aiosqlite:///$$data/shelfwise.db; \
	if [ -e $$app/shelfwise/cli.py ]; then $(PY) -m shelfwise create-demo || exit 1; fi; \
	$(VENV)/bin/uvicorn --app-dir $$app --factory shelfwise.main:create_app \
		--host 127.0.0.1 --port 8000
else
	@$(PY) -m shelfwise create-demo
	$(VENV)/bin/uvicorn --factory shelfwise.main:create_app --host 127.0.0.1 --port 8000
endif

# Not part of `make test`: it takes a minute or two and its figures are measurements. Settings
# come from the environment: `make bench BENCH_DURATION=20 BENCH_CONCURRENCY=32`.
bench: setup  ## load-test the service on PostgreSQL, as ratios to anchors (PART=8: part 8's app)
	@app=.; if [ -n '$(PART)' ]; then app=$$($(PY) -m workbook app-dir '$(PART)') || exit 2; fi; \
	$(PY) -m bench --app-dir $$app --part '$(if $(PART),part $(PART),root)'

docs: setup  ## serve the documentation site (http://127.0.0.1:8001)
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

checkpoints: setup  ## re-run every notebook: regenerate stored outputs, checkpoints and the root app
	$(PY) -m workbook record

# --- checks (everything CI runs) ------------------------------------------------------

test: lint typecheck test-app test-notebooks test-workbook  ## run every check CI runs
	@echo "make test: all checks passed"

lint: setup  ## ruff lint and format check
	$(VENV)/bin/ruff check shelfwise tests workbook bench notebooks/conftest.py
	$(VENV)/bin/ruff format --check shelfwise tests workbook bench notebooks/conftest.py

typecheck: setup  ## mypy --strict on the package, its tests, the workbook machinery and the bench
	$(VENV)/bin/mypy shelfwise tests workbook bench

test-app: setup  ## the finished application's test suite
	$(PY) -m pytest -q -p no:cacheprovider tests

test-notebooks: setup  ## run every notebook against its stored outputs and checkpoints
	$(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg -n $(JOBS) --dist loadfile notebooks

# The site test finds the browser through CHROMIUM. In CI, and as root on Debian/Ubuntu, a
# missing one is installed and the check always runs; on a learner's laptop without one,
# only the tests that open pages are skipped (-p workbook.browser), with one line on how to
# get one.
IS_CI := $(filter-out 0 false False,$(CI))
test-workbook: setup  ## the machinery's and the bench's own tests, and the site in a real browser
	@found=$$($(PY) -m workbook browser) || { \
		if [ -n "$(IS_CI)" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; }; then \
			$(MAKE) --no-print-directory browser && found=$$($(PY) -m workbook browser); fi; }; \
	if [ -n "$$found" ] || [ -n "$(IS_CI)" ]; then \
		CHROMIUM=$$found $(PY) -m pytest -q -p no:cacheprovider workbook/tests bench/tests; \
	else \
		$(PY) -c 'from workbook.browser import SKIPPING; print(SKIPPING)'; \
		$(PY) -m pytest -q -p no:cacheprovider -p workbook.browser workbook/tests bench/tests; \
	fi

browser: setup  ## find Chrome/Chromium/Edge for the site check; install Chromium as root on Debian/Ubuntu
	@$(PY) -m workbook browser || { \
		command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { \
			$(PY) -c 'from workbook.browser import HOW_TO_GET_ONE; print(HOW_TO_GET_ONE)'; \
			exit 1; }; \
		echo "installing chromium …"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && \
		$(PY) -m workbook browser; }

FORCE:

clean:  ## remove workspaces, caches and the built site (keeps .venv)
	rm -rf .workspaces site .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
