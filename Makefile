# The two commands of the README's quick start, plus the steps they are made of.
# Everything installs into ./.venv, so a fresh machine needs only python3 (and node/npm for the SDK).

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
DATA    ?= ./stumble-data
PORT    ?= 8710

.PHONY: run test install lint typecheck unit sdk sdk-test dashboard-js dashboard-js-test browsers clean

run: $(STAMP)  ## install and start the server with demo data on the embedded default
	$(BIN)/stumble demo --data $(DATA) --port $(PORT)

test: $(STAMP) lint typecheck sdk-test dashboard-js-test unit  ## install everything and run the whole test suite

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# Builds the SDK, enforces the size budget, runs its tests, and checks that the bundles the
# collector serves (committed under src/stumble/collector/sdk) are exactly what the source builds.
sdk-test:
	cd sdk/js && npm ci --no-audit --no-fund && npm run build && npm run size && npm test
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && \
		! git diff --quiet -- src/stumble/collector/sdk; then \
		echo "stale SDK bundles: run 'cd sdk/js && npm run build' and commit them"; exit 1; fi

# The dashboard's chart bundle (Vega-Lite), served as /static/charts.js, and the check that the
# committed bundle and its licence file are exactly what the source builds (untracked counts).
DASHBOARD_BUILT := src/stumble/web/static/charts.js src/stumble/web/static/charts.LICENSES.txt
dashboard-js:
	cd dashboard/js && npm ci --no-audit --no-fund && npm run build

dashboard-js-test: dashboard-js
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && \
		[ -n "$$(git status --porcelain -- $(DASHBOARD_BUILT))" ]; then \
		echo "stale chart bundle: run 'make dashboard-js' and commit $(DASHBOARD_BUILT)"; exit 1; fi

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
