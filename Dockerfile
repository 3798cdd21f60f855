# The reproduction image: a CUDA runtime, Python 3.12 and Java 21 from Ubuntu 24.04, every Python package pinned by
# docker/requirements.lock (vLLM, torch as vLLM pins it, pyserini for Java 21), and inpars with its tables.
#   make docker-build                       build it
#   make docker-reproduce-scifact           run 'inpars reproduce scifact' in it (runs/ and ~/.cache are mounted)
# No Docker engine runs in CI: CI lints this file (hadolint) and checks its pins against the lock (docker/check_pins.py).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ARG PYTHON_VERSION=3.12
ARG JAVA_VERSION=21
# What the image is for, stated as labels; docker/check_pins.py holds them to the lock.
ARG VLLM_VERSION=0.11.0
ARG TORCH_VERSION=2.8.0
ARG PYSERINI_VERSION=0.40.0
LABEL org.opencontainers.image.title="inpars reproduction" \
      org.opencontainers.image.description="InPars, InPars-v2 and Promptagator reproduction: vllm ${VLLM_VERSION}, torch ${TORCH_VERSION}, pyserini ${PYSERINI_VERSION}, Java ${JAVA_VERSION}"

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    JAVA_HOME=/usr/lib/jvm/java-${JAVA_VERSION}-openjdk-amd64 \
    INPARS_REPRODUCE_TABLES=/opt/inpars/reproduce

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# System packages come from the Ubuntu release the base image pins; the Python packages are pinned by the lock.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" "openjdk-${JAVA_VERSION}-jre-headless" ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && "python${PYTHON_VERSION}" -m venv "${VIRTUAL_ENV}"

WORKDIR /opt/inpars

# The lock alone first, so that editing the source does not reinstall the dependencies.
COPY docker/requirements.lock docker/check_pins.py docker/
RUN pip install --no-deps -r docker/requirements.lock \
    && python docker/check_pins.py --installed

COPY pyproject.toml README.md ./
COPY inpars inpars
COPY reproduce reproduce
COPY docker/entrypoint.sh docker/
RUN pip install --no-deps . \
    && java -version \
    && inpars reproduce --list >/dev/null

WORKDIR /workspace
ENTRYPOINT ["/opt/inpars/docker/entrypoint.sh"]
CMD ["--help"]
