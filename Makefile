# Two commands matter: `make run` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi:app

.PHONY: run test e2e lint bench install translations chromium db demo worker clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

translations: $(STAMP)
	@if [ -d translations ]; then $(BIN)/pybabel compile -q -d translations; fi

chromium:
	@scripts/ensure-chromium.sh

db: install translations
	$(BIN)/flask db upgrade

demo: db
	$(BIN)/flask demo seed

# Start the web app and the background worker on SQLite with demo data.
run: demo
	@scripts/run-dev.sh

test: install translations chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

e2e: install translations chromium
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -c pyproject.toml -r app

bench: install translations
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
