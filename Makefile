# One venv, one project: every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-unit demo up down status lint bench-up bench-ledger bench-fanout clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## test: the whole suite (unit, emulator integration, end to end)
test: $(STAMP)
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest -m unit

## demo: the main job on the local stack
demo: $(STAMP)
	$(BIN)/python -m caplab.demo

up: $(STAMP)
	$(BIN)/caplab emulators up

down: $(STAMP)
	$(BIN)/caplab emulators down

status: $(STAMP)
	$(BIN)/caplab emulators status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright

bench-up: $(STAMP)
	$(BIN)/python -m loadtest.bench_up

## bench-ledger: ledger HTTP vs raw Spanner client (reads, transactions/s), relay delay
bench-ledger: $(STAMP)
	$(BIN)/python -m loadtest.bench_ledger

## bench-tasks: Cloud Tasks emulator dispatch throughput and backoff timing error
.PHONY: bench-tasks
bench-tasks: $(STAMP)
	$(BIN)/python -m loadtest.bench_tasks

clean:
	rm -rf $(VENV) .caplab .pytest_cache .ruff_cache

## bench-fanout: commit-to-visible delay of the activity read model at 50 transfers/s
bench-fanout: $(STAMP)
	$(BIN)/python -m loadtest.bench_fanout --rate 50 --seconds 20
