# Two commands matter: `make run` and `make test`. Everything else is a building block.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := wsgi:app

.PHONY: run test test-year-ahead test-postgres e2e lint audit security bench install translations messages debian-packages db demo worker clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Compile the committed .po catalogues to .mo (never committed); every run, test and e2e does this.
translations: $(STAMP)
	$(BIN)/pybabel -q compile -d translations

# After adding interface strings: extract them and merge into each catalogue, then translate
# translations/lt/LC_MESSAGES/messages.po (tests/test_i18n.py lists any msgid still untranslated).
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext --sort-by-file --project "Skin Clinic" \
		--add-comments Translators: -o translations/messages.pot .
	$(BIN)/pybabel -q update -d translations -i translations/messages.pot --ignore-obsolete --previous \
		--ignore-pot-creation-date
	rm -f translations/messages.pot

# Chromium (browser tests), DejaVu fonts (screenshots, letters), libfaketime (clock drills) and nginx
# (the production stack test runs the shipped site; Debian 12's `nginx` package, not started as a service).
debian-packages:
	@scripts/ensure-debian.sh /usr/bin/chromium=chromium /usr/share/fonts/truetype/dejavu=fonts-dejavu-core \
		/usr/bin/faketime=faketime /usr/sbin/nginx=nginx

db: install translations
	$(BIN)/flask db upgrade

demo: db
	$(BIN)/flask demo seed

# Start the web app and the background worker on SQLite with demo data.
run: demo
	@scripts/run-dev.sh

# The suite runs in PYTEST_WORKERS processes (pytest-xdist), a test file each at a time: every test
# keeps its data in a database of its own. Three, even on two cores: many tests wait on a server, a
# process or the database, and the third process uses that time. PYTEST_WORKERS=0 runs it in this
# one process. The browser
# tests run after it, in one process: a Chromium sharing two cores with the rest of the suite made
# their timing uncertain.
PYTEST_WORKERS ?= 3
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

test: lint translations debian-packages
	$(BIN)/python -m pytest $(PARALLEL) --ignore=tests/e2e $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# The suite (browser tests aside) with the system clock 400 days ahead: no test may depend on today's
# date. libfaketime must leave the monotonic clock alone, or Python's timed waits hang.
test-year-ahead: install translations debian-packages
	FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f +400d $(BIN)/python -m pytest $(PARALLEL) \
		--ignore=tests/e2e $(PYTEST_ARGS)

# The suite against PostgreSQL (TEST_DATABASE_URL; CI's second pass). Lint ran in `make test` already,
# and so did the tests whose servers always keep their data in a SQLite file (the browser tests' live
# server, the production stack, the connection test): here they would only repeat themselves. Each
# process has a PostgreSQL database of its own (tests/conftest.py).
SQLITE_ONLY := --ignore=tests/e2e --ignore=tests/test_production_stack.py --ignore=tests/security/test_connections.py
test-postgres: install translations debian-packages
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(BIN)/python -m pytest $(PARALLEL) $(SQLITE_ONLY) $(PYTEST_ARGS)

e2e: install translations debian-packages
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# Style, formatting, types (mypy, configured in pyproject.toml) and bandit: part of every `make test`.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r app

# Known vulnerabilities in the pinned runtime packages (pip-audit asks PyPI's advisory data).
# Where that data cannot be reached, the script says the audit was skipped instead of failing.
audit: install
	@BIN=$(BIN) scripts/audit.sh

# Everything security in one go: bandit, the dependency audit, the attack suite (tests/security) and
# the production stack (nginx with TLS, gunicorn, Redis, worker) attacked from outside.
security: install translations debian-packages
	$(BIN)/bandit -q -c pyproject.toml -r app
	@BIN=$(BIN) scripts/audit.sh
	$(BIN)/python -m pytest tests/security tests/test_production_stack.py $(PYTEST_ARGS)

# Benchmarks as ratios measured in one run; writes docs/performance.md. nginx (the shipped site is
# measured and tests/test_nginx_cache.py runs it) is installed here, not for make test. The national
# benchmark needs PostgreSQL (BENCH_POSTGRES_URL); BENCH_ARGS=--reuse keeps its loaded databases.
bench: install translations
	@scripts/ensure-wrk.sh || true
	@scripts/ensure-debian.sh /usr/sbin/nginx=nginx || true
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
