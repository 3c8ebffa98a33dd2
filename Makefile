# Two commands on a fresh machine: `make run` and `make test`. Only python3 (3.11+) and make are needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
export TONGZHI_ENV ?= embedded

.PHONY: run test lint translations screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

translations: $(VENV)/.installed
	$(BIN)/python scripts/build_translations.py

## Serve the dashboard on http://$(HOST):$(PORT) with the embedded defaults (SQLite in instance/, and the
## WeChat sandbox on port 5010 unless WECHAT_APPID is set). Other ports: make run PORT=8000 SANDBOX_PORT=8010;
## HOST=0.0.0.0 listens on every interface.
run: $(VENV)/.installed translations
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi demo-admin --host $(HOST) --port $(PORT)
	$(BIN)/flask --app wsgi serve --host $(HOST) --port $(PORT)

## Run the whole test suite (PostgreSQL/Redis/browser tests run when TEST_DATABASE_URL, REDIS_URL, chromium exist),
## one process per core up to four (pytest-xdist: 13 minutes here on two cores, 21 in one process).
## Each process has its own databases and ports. TEST_PROCESSES=0 runs it in this one process.
TEST_PROCESSES ?= auto
test: $(VENV)/.installed-test translations
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(TEST_PROCESSES) --maxprocesses 4

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache dashboard/translations/*/

## Re-take the screenshots in docs/screenshots/ with the browser tests (needs Debian's chromium).
screenshots: $(VENV)/.installed-test translations
	TONGZHI_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/browser -q
