# The reproduction image: Debian 13 (Python 3.13, OpenJDK 21 with its incubator modules, a C compiler and the Python
# headers that triton needs at run time) and every Python package from docker/requirements.lock, hashes checked.
# CUDA comes with PyPI's torch and vLLM wheels (nvidia-* packages), so the host needs only an NVIDIA driver.
#   make docker-build                       build it on the published base (BASE_IMAGE below, pinned by digest)
#   make docker-test                        build it on a twin of that base bootstrapped from Debian, then test inside
#   make docker-reproduce-scifact           run 'inpars reproduce scifact' in it
# BASE_IMAGE: the published base by digest; CI passes the locally bootstrapped twin of the same release
# (docker/bootstrap-base.sh). check_pins.py holds this line, the release and the versions below to the lock's header.
ARG BASE_IMAGE=debian:trixie-slim@sha256:a29215f6a35e51e22adffa17f89e9d2ef06214e64a2bad10d765c46aea49f11f

FROM ${BASE_IMAGE}
ARG PYTHON_VERSION=3.13
ARG JAVA_VERSION=21
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    JAVA_HOME=/usr/lib/jvm/java-${JAVA_VERSION}-openjdk-amd64
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# System packages come from the Debian release of the base; the Python packages are pinned and hashed by the lock.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" "python${PYTHON_VERSION}-dev" gcc libc6-dev make \
        "openjdk-${JAVA_VERSION}-jre-headless" ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && "python${PYTHON_VERSION}" --version \
    && java --list-modules | grep -q '^jdk.incubator.vector@'

# The lock, every file checked against its hash. setuptools comes first, so that the packages that ship only as
# sources (pyserini) build with it and not with whatever release build isolation would fetch. PIP_CERT_URL: where the
# build may fetch a CA bundle that pip needs on networks that intercept TLS (docker/build.sh serves it over loopback);
# it is used by this step and removed in it, so no layer keeps it.
ARG PIP_CERT_URL=
COPY docker/requirements.lock docker/check_pins.py /tmp/build/
RUN "python${PYTHON_VERSION}" -m venv "${VIRTUAL_ENV}" \
    && if [ -n "${PIP_CERT_URL}" ]; then \
        python -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "${PIP_CERT_URL}" /tmp/build/ca.pem \
        && export PIP_CERT=/tmp/build/ca.pem; fi \
    && python /tmp/build/check_pins.py --lock /tmp/build/requirements.lock --entries setuptools >/tmp/build/setuptools.lock \
    && pip install --no-deps --require-hashes -r /tmp/build/setuptools.lock \
    && pip install --no-deps --require-hashes --no-build-isolation -r /tmp/build/requirements.lock \
    && rm -rf /tmp/build

LABEL org.opencontainers.image.title="inpars reproduction" \
      org.opencontainers.image.description="InPars, InPars-v2 and Promptagator reproduction: Debian 13, Python ${PYTHON_VERSION}, OpenJDK 21, docker/requirements.lock"
WORKDIR /opt/inpars
COPY docker/requirements.lock docker/overrides.txt docker/check_pins.py docker/entrypoint.sh docker/
COPY pyproject.toml setup.py README.md Makefile ./
COPY inpars inpars
COPY reproduce reproduce
# INPARS_COMMIT: the commit of the source ('make docker-build' passes it, '-dirty' added for uncommitted changes). The
# build context has no .git and the image no git, so setup.py records it in the installed package, where
# inpars.provenance finds it: every report and stage.json made in the image names it. Empty: reported as unknown.
ARG INPARS_COMMIT=
LABEL org.opencontainers.image.revision="${INPARS_COMMIT}"
# inpars itself, built offline with the locked setuptools; the lock check (versions and pip check), the commit the
# installed copy reports (asked from outside the source folder, so that the installed copy answers) and the listing
# prove the install whole.
# Caches live under /cache (mount the host's ~/.cache there) and are writable by any uid the container runs as.
RUN pip install --no-deps --no-build-isolation . \
    && python docker/check_pins.py --installed \
    && recorded="$(python -I -c 'from inpars.provenance import git_commit; print(git_commit() or "")')" \
    && if [ "${recorded}" != "${INPARS_COMMIT}" ]; then \
        echo "the installed inpars reports commit '${recorded}', but INPARS_COMMIT is '${INPARS_COMMIT}'" >&2; exit 1; fi \
    && inpars reproduce --list >/dev/null \
    && mkdir -p /cache /workspace \
    && chmod 1777 /cache /workspace
ENV INPARS_IN_IMAGE=1 \
    INPARS_REPRODUCE_TABLES=/opt/inpars/reproduce \
    HOME=/tmp \
    XDG_CACHE_HOME=/cache \
    HF_HOME=/cache/huggingface \
    PYSERINI_CACHE=/cache/pyserini \
    IR_DATASETS_HOME=/cache/ir_datasets
WORKDIR /workspace
ENTRYPOINT ["/opt/inpars/docker/entrypoint.sh"]
CMD ["--help"]
