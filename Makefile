# Every target installs what it needs on first use: uv (from PyPI, into .tools/), then the
# locked environment (.venv/, from uv.lock). `make help` lists the targets.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS := never

.DEFAULT_GOAL := help
.PHONY: help test test-unit demo up down status lint lock infra-check bench-up bench-ledger \
	bench-fanout bench-tasks bench-lab bench-checker bench-workers mutation mutation-show clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra dev --python $(PYTHON) --quiet
	@touch $(STAMP)

## help: list the targets
help:
	@grep -E '^## ' $(MAKEFILE_LIST) | sed -E 's/^## ([a-z-]+): /  \1\t/' | expand -t 16

## test: the whole suite (unit, emulator integration, end to end); starts and stops its servers
test: $(STAMP)
	$(BIN)/pytest

## test-unit: the fast layer only (no emulator, no network)
test-unit: $(STAMP)
	$(BIN)/pytest -m unit

## mutation: mutmut over the modules in tests/mutation/config.toml; a score per module (slow)
mutation: $(STAMP)
	$(BIN)/python -m tests.mutation.run --jobs $(or $(JOBS),1) $(foreach m,$(MODULES),--module $(m))

## mutation-show: the diff of one mutant (make mutation-show MUTANT=name)
mutation-show: $(STAMP)
	cd .caplab/mutation && ../../$(BIN)/mutmut show $(MUTANT)

## demo: the main job on the local stack (emulators, services, tours, lab), then tears down
demo: $(STAMP)
	$(BIN)/python -m caplab.demo

## up: start the emulators (caplab emulators up)
up: $(STAMP)
	$(BIN)/caplab emulators up

## down: stop the emulators
down: $(STAMP)
	$(BIN)/caplab emulators down

## status: the emulators' health
status: $(STAMP)
	$(BIN)/caplab emulators status

## lint: ruff, formatting, import layers (import-linter) and pyright
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pyright

## lock: refresh uv.lock after editing the dependencies in pyproject.toml
lock: | $(UV)
	$(UV) lock

## infra-check: the Pulumi program under mocks for dev and prod, with the policy pack
infra-check: $(STAMP)
	$(BIN)/python -m infra.offline

## bench-up: cold start of every emulator until ready
bench-up: $(STAMP)
	$(BIN)/python -m caplab.bench.up

## bench-ledger: ledger HTTP vs raw Spanner client (reads, transactions/s), relay delay
bench-ledger: $(STAMP)
	$(BIN)/python -m caplab.bench.ledger

## bench-tasks: Cloud Tasks emulator dispatch throughput and backoff timing error
bench-tasks: $(STAMP)
	$(BIN)/python -m caplab.bench.tasks

## bench-lab: scheduling lag of the load generator at 1,000 req/s
bench-lab: $(STAMP)
	$(BIN)/python -m caplab.bench.lab

## bench-checker: history checkers: single-key corpus (PORCUPINE=dir: side by side), 100k-op ledger
bench-checker: $(STAMP)
	$(BIN)/python -m caplab.bench.checker $(if $(PORCUPINE),--porcupine $(PORCUPINE))

## bench-workers: 1 vs 2 generator processes at lag p99 <= 2 ms, merge of 1,000,000 operations
bench-workers: $(STAMP)
	$(BIN)/python -m caplab.bench.workers

## bench-fanout: commit-to-visible delay of the activity read model at 50 transfers/s
bench-fanout: $(STAMP)
	$(BIN)/python -m caplab.bench.fanout --rate 50 --seconds 20

## clean: remove the environments and local state
clean:
	rm -rf $(VENV) $(TOOLS) .caplab .pytest_cache .ruff_cache
