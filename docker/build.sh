#!/usr/bin/env bash
# Build the image: [INPARS_COMMIT=...] docker/build.sh IMAGE [BASE_IMAGE]
# Where pip needs a CA bundle of its own to reach the package index (PIP_CERT, or the 'cert' of pip's configuration
# here), the bundle is served to the build over loopback for the one step that installs the lock, and never becomes
# part of the image: a file copied into a build would stay in its layer.
set -euo pipefail

image="${1:?usage: docker/build.sh IMAGE [BASE_IMAGE]}"
base="${2:-}"
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"

cert="${PIP_CERT:-$("$python" -m pip config list 2>/dev/null | sed -n "s/^[a-z:]*\.cert='\(.*\)'$/\1/p" | head -1)}"
args=(--network host -t "$image")
[ -n "$base" ] && args+=(--build-arg "BASE_IMAGE=$base")
# The commit to record in the image ('make docker-build' gives it; empty: the image reports it as unknown).
args+=(--build-arg "INPARS_COMMIT=${INPARS_COMMIT:-}")
if [ -n "$cert" ] && [ -f "$cert" ]; then
    served="$(mktemp -d)"
    cp "$cert" "$served/ca.pem"
    # A fixed port: the URL is a build argument, and a new value each time would rebuild the locked layer.
    port="${INPARS_CERT_PORT:-47831}"
    "$python" -m http.server --bind 127.0.0.1 --directory "$served" "$port" >/dev/null 2>&1 &
    server=$!
    trap 'kill "$server" 2>/dev/null; rm -rf "$served"' EXIT
    for attempt in $(seq 50); do
        "$python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/ca.pem', timeout=1)" 2>/dev/null && break
        kill -0 "$server" 2>/dev/null || { echo "error: port $port is taken; set INPARS_CERT_PORT to a free one" >&2; exit 2; }
        [ "$attempt" = 50 ] && { echo "error: the CA bundle server on port $port did not start" >&2; exit 2; }
        sleep 0.1
    done
    args+=(--build-arg "PIP_CERT_URL=http://127.0.0.1:$port/ca.pem")
fi
# The classic builder: Debian's docker.io comes without buildx.
DOCKER_BUILDKIT=0 docker build "${args[@]}" .
