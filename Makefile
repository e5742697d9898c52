# Every install step lives here, so a fresh machine with Python 3.11+ and make needs nothing else.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-cluster lint format docs docs-serve bench bench-peer soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "acceptd needs Python 3.11+; run make PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,otel,test,lint,docs]'
	@# The light install's wheels, so tests/e2e/test_package.py installs it offline.
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(VENV)/wheels 'setuptools>=77' .
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/acceptd dev

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The store suite with three shards on one server, then the store and integration suites
# and the faults that kill roles (a worker, a dispatcher mid-attempt) on an embedded
# three-primary Valkey Cluster with replicas (4 shards). A cluster's own faults (a primary
# killed under load) are in tests/e2e/test_cluster_failover.py, which `make test` runs.
CLUSTER_SUITES := tests/store tests/integration tests/e2e/test_faults.py tests/e2e/test_dispatcher_crash.py \
	tests/e2e/test_fair_share.py tests/e2e/test_schedules.py
test-cluster: $(STAMP)
	ACCEPTD_TEST_SHARDS=3 $(BIN)/pytest tests/store
	ACCEPTD_TEST_TOPOLOGY=cluster ACCEPTD_TEST_SHARDS=4 $(BIN)/pytest $(CLUSTER_SUITES)

lint: $(STAMP)
	$(BIN)/ruff check service tests bench examples docs
	$(BIN)/ruff format --check service tests bench examples docs
	$(BIN)/mypy
	$(BIN)/mypy tests bench examples
	$(BIN)/lint-imports
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The pages generated from the code (settings, HTTP reference, home page from the README).
docs: $(STAMP)
	$(BIN)/python docs/generate.py

docs-serve: docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

format: $(STAMP)
	$(BIN)/ruff format service tests bench examples docs
	$(BIN)/ruff check --fix service tests bench examples docs

# The fault suite's long form: thousands of jobs through crashes, restarts and outages.
soak: $(STAMP)
	SOAK_JOBS=3000 SOAK_SECONDS=60 $(BIN)/pytest -s tests/e2e/test_soak.py

# The whole benchmark, the submit path under wrk (Debian's; `apt-get install wrk`), and what
# ordered delivery costs.
bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.wrk
	$(BIN)/python -m bench.ordering
	$(BIN)/python -m bench.commands
	$(BIN)/python -m bench.ceiling

# acceptd against a Flask + gunicorn + Celery peer and bare arq, in one run (bench/README.md).
# Its packages are an extra of their own, installed here only: CI never needs them. `server`
# with it, so that arq's redis pin takes part in the resolution.
PEER_STAMP := $(VENV)/.bench-peer-installed
$(PEER_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[server,bench-peer]'
	@touch $(PEER_STAMP)

bench-peer: $(PEER_STAMP)
	$(BIN)/python -m bench.peer

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
