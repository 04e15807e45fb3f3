# One venv, one project: every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-unit demo up down status lint bench-up bench-fanout clean infra-check

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

## infra-check: the Pulumi program under mocks for dev and prod, with the policy pack
infra-check: $(STAMP)
	$(BIN)/python -m infra.offline

clean:
	rm -rf $(VENV) .caplab .pytest_cache .ruff_cache

## bench-fanout: commit-to-visible delay of the activity read model at 50 transfers/s
bench-fanout: $(STAMP)
	$(BIN)/python -m loadtest.bench_fanout --rate 50 --seconds 20
