# One command set for people and CI: .ci/run calls `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.13: build and test with it (pyenv's, where it is not on PATH).
# (A pyenv shim answers to python3.13 even where that version is not selected: try each one.)
ifndef PYTHON
PYTHON := $(shell for candidate in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13; do \
	"$$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null \
	&& { command -v "$$candidate"; break; }; done)
endif
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
# sam build looks for python3.13 on PATH; the project's virtual environment provides it.
SAM := PATH=$(CURDIR)/$(BIN):$$PATH SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
PYTEST_ARGS ?=

.PHONY: help install lint build test demo bench local constraints clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "python3.13 not found: install it or set PYTHON=/path/to/python3.13"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	@touch $@

install: $(BIN)/.installed $(SAM_VENV)/.installed ## create both virtual environments

lint: install ## ruff, mypy, cfn-lint and sam validate --lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/shared/cache_pilot cli/cache_pilot_cli local/cache_pilot_local functions bench
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint

build: install ## sam build (the layer with arm64 wheels, the functions)
	$(SAM) build

test: lint build ## the whole suite: lint, build, every test
	$(BIN)/pytest $(PYTEST_ARGS)

demo: $(BIN)/.installed ## the whole flow on the embedded AWS, no credentials needed
	$(BIN)/cache-pilot local demo

bench: $(BIN)/.installed ## benchmarks: figures and ratios, side by side (skopeo for the last)
	$(BIN)/python -m bench.sync_cost
	$(BIN)/python -m bench.warmup_cost
	$(BIN)/python -m bench.freshness_cost
	$(BIN)/python -m bench.demo_time
	$(BIN)/python bench/warm_vs_skopeo.py

local: $(BIN)/.installed ## template.yaml deployed on the embedded AWS, running until interrupted
	$(BIN)/cache-pilot local up

constraints: ## pin the development environment anew
	{ echo "# Exact versions of the development environment; regenerate with make constraints."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt

clean: ## remove build output and caches (keeps the virtual environments)
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache
