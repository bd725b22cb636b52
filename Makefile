# The two commands a newcomer needs: `make run` and `make test`. Only Python is required:
# without DATABASE_URL an embedded PostgreSQL starts under instance/, without REDIS_URL
# jobs run in-process.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test bench install clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

.env: | $(INSTALLED)
	$(BIN)/python -m app.devenv > .env

run: $(INSTALLED) .env
	$(FLASK) db upgrade
	$(FLASK) demo
	$(FLASK) run --host 127.0.0.1 --port 5000

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Every benchmark (ledger, win-back, widget, analytics, ingest, e2e, redemption storm, burst)
# -> bench/RESULTS.md. BENCH_ARGS=--quick for small sizes, BENCH_ARGS="--only ingest,e2e" for some.
bench: $(INSTALLED)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
