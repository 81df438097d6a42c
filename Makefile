# SRS: `make run` to try it, `make test` to prove it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app app

.PHONY: run test test-postgres lint install browser pdf-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the embedded default: SQLite under instance/, one process, scheduler inside.
run: $(STAMP) pdf-tools
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

## WeasyPrint's system libraries (Pango) for the review packet, and pdftoppm (poppler-utils)
## for the tests that look inside it (Debian packages; installed when we are root).
pdf-tools:
	@if [ -x /usr/bin/pdftoppm ] && ldconfig -p | grep -q libharfbuzz-subset; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Pango and poppler-utils from Debian's packages..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils >/dev/null; \
	else \
		echo "Missing: run 'sudo apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 poppler-utils'."; \
	fi

# pytest-xdist: one worker per core; every real-server test runs on one worker, one at a
# time (tests/conftest.py groups them), while the others run the in-process tests.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

## Lint, then the whole suite, browser tests included.
test: $(STAMP) browser pdf-tools
	$(BIN)/ruff check srs tests app.py
	$(PYTEST) $(PYTEST_ARGS)

## The same suite against PostgreSQL (SRS_TEST_DATABASE_URL overrides the server).
test-postgres: $(STAMP) browser pdf-tools
	SRS_TEST_DATABASE_URL=$${SRS_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		$(PYTEST) $(PYTEST_ARGS)

## The floor benchmark against the real server: BENCH_ARGS="--database-url postgresql+psycopg://...";
## then the tablet page's bytes on the wire.
.PHONY: bench
bench: $(STAMP) browser
	$(BIN)/python -m bench.floor $(BENCH_ARGS)
	$(BIN)/python -m bench.page

## A cold floor load in real Chromium: bytes on the wire, beside the same bodies uncompressed.
.PHONY: bench-page
bench-page: $(STAMP) browser
	$(BIN)/python -m bench.page $(BENCH_ARGS)

## The timer benchmark: 1,000 due times, a SIGKILL halfway, beside in-memory timers.
.PHONY: bench-timers
bench-timers: $(STAMP)
	$(BIN)/python -m bench.timers $(BENCH_ARGS)

## The alert scan in process: SQL statements and CPU per scan and per alert raised or
## escalated, beside one bare round trip (BENCH_ARGS="--database-url postgresql+psycopg://...").
.PHONY: bench-scan
bench-scan: $(STAMP)
	$(BIN)/python -m bench.scan $(BENCH_ARGS)

## One tap in process: statements and CPU of each kind of tap's request and of its fan-out,
## beside one primary-key read through the driver, Core and the ORM
## (BENCH_ARGS="--database-url postgresql+psycopg://...").
.PHONY: bench-tap
bench-tap: $(STAMP)
	$(BIN)/python -m bench.tap $(BENCH_ARGS)

## The weekly review and monthly report on 1.5 million visits: BENCH_ARGS="--visits 100000".
.PHONY: bench-reports
bench-reports: $(STAMP)
	$(BIN)/python -m bench.reports $(BENCH_ARGS)

## The regional benchmark: 20 sites on two instances over PostgreSQL and Redis, the scheduler
## alone, alarms from due time to screen; beside the bare baselines on the same two instances.
.PHONY: bench-region
bench-region: $(STAMP)
	$(BIN)/python -m bench.region $(BENCH_ARGS)

## The monthly report of 20 sites, 2 million visits in all, on PostgreSQL (BENCH_DATABASE_URL).
BENCH_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
.PHONY: bench-reports-sites
bench-reports-sites: $(STAMP)
	$(BIN)/python -m bench.reports --sites 20 --visits 2000000 --clients 40000 \
		--database-url $(BENCH_DATABASE_URL) $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check srs tests app.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
