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

.PHONY: help setup lab serve docs test lint typecheck test-app test-workbook test-notebooks \
	checkpoints lock browser clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

# --- setup ------------------------------------------------------------------------------

$(STAMP): requirements.lock pyproject.toml
	@echo "setting up $(VENV) from requirements.lock …"
	@test -x $(PY) || python3 -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check \
		"uv==$$(sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements.lock)"
	@$(UV) pip sync --quiet --python $(PY) requirements.lock
	@$(UV) pip install --quiet --python $(PY) --no-deps --editable .
	@touch $@

setup: $(STAMP)  ## create .venv with the locked dependencies

lock: setup  ## re-resolve requirements.lock from pyproject.toml
	$(UV) pip compile pyproject.toml --group dev --group workbook --group docs \
		--generate-hashes --universal --python-version 3.11 --no-header --quiet \
		-o requirements.lock

# --- the main jobs ----------------------------------------------------------------------

lab: setup  ## open JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

serve: setup  ## run the finished service on SQLite (http://127.0.0.1:8000/docs)
	$(VENV)/bin/uvicorn --factory shelfwise.main:create_app --host 127.0.0.1 --port 8000

docs: setup  ## serve the documentation site (http://127.0.0.1:8001)
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

checkpoints: setup  ## re-run every notebook: regenerate stored outputs, checkpoints and the root app
	$(PY) -m workbook record

# --- checks (everything CI runs) ------------------------------------------------------

test: lint typecheck test-app test-notebooks test-workbook  ## run every check CI runs
	@echo "make test: all checks passed"

lint: setup  ## ruff lint and format check
	$(VENV)/bin/ruff check shelfwise tests workbook
	$(VENV)/bin/ruff format --check shelfwise tests workbook

typecheck: setup  ## mypy --strict on the package, its tests and the workbook machinery
	$(VENV)/bin/mypy shelfwise tests workbook

test-app: setup  ## the finished application's test suite
	$(PY) -m pytest -q -p no:cacheprovider tests

test-notebooks: setup  ## run every notebook against its stored outputs and checkpoints
	$(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg -n $(JOBS) --dist loadfile notebooks

test-workbook: setup browser  ## the machinery's own tests and the site in a real browser
	$(PY) -m pytest -q -p no:cacheprovider workbook/tests

browser:  ## make sure headless Chromium is installed (Debian/Ubuntu, as root)
	@command -v chromium >/dev/null || { \
		command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] || { \
			echo "install Chromium (package 'chromium') to run the browser check"; exit 1; }; \
		echo "installing chromium …"; \
		apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

clean:  ## remove workspaces, caches and the built site (keeps .venv)
	rm -rf .workspaces site .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
