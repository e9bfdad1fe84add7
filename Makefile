# Every target bootstraps .venv when it is missing, so a fresh machine needs only Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SEEDS ?= 500

.PHONY: test lint typecheck unit demo sim bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/check_imports.py

typecheck: $(STAMP)
	$(BIN)/mypy --strict protocol sync

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

demo: $(STAMP)
	$(BIN)/sanji demo

# The deterministic fault simulator (tests/sim): SEEDS seeds from SEED (default 0). A failing seed
# prints its replay command; `make sim SEEDS=1 SEED=<n>` replays one.
sim: $(STAMP)
	$(BIN)/python -m tests.sim --seeds $(SEEDS) $(if $(SEED),--seed $(SEED))

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	@touch $(BENCH_STAMP)

# Every benchmark and the reference peer (../shared/bench/peers/pouchdb, needs node and npm), same
# machine, same session: bench/results/latest.json and docs/bench-chart.png. Never part of `make test`.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
