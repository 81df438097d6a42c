# SRS: `make run` to try it, `make test` to prove it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app app

.PHONY: run test test-postgres lint install browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the embedded default: SQLite under instance/, one process, scheduler inside.
run: $(STAMP)
	$(FLASK) db upgrade
	@if $(FLASK) srs is-empty; then $(FLASK) srs seed-demo >/dev/null; fi
	@if [ -f instance/demo-logins.txt ]; then cat instance/demo-logins.txt; fi
	$(BIN)/python app.py

## Real Chromium for the browser tests (Debian package; installed when we are root).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Chromium from Debian's packages..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "Chromium is missing: run 'sudo apt-get install chromium' for the browser tests."; \
	fi

## Lint, then the whole suite, browser tests included.
test: $(STAMP) browser
	$(BIN)/ruff check srs tests app.py
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The same suite against PostgreSQL (SRS_TEST_DATABASE_URL overrides the server).
test-postgres: $(STAMP) browser
	SRS_TEST_DATABASE_URL=$${SRS_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(BIN)/python -m pytest $(PYTEST_ARGS)

## The floor benchmark against the real server: BENCH_ARGS="--database-url postgresql+psycopg://...".
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m bench.floor $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check srs tests app.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
