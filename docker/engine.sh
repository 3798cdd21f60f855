#!/usr/bin/env bash
# Make sure a Docker engine answers, for 'make docker-test' on a machine (CI) where none may run yet.
#   docker/engine.sh        install Debian's docker.io and debootstrap if missing (as root), start dockerd if no
#                           engine answers, and print the pid of the dockerd it started (nothing if one was running)
# The engine runs without a bridge network or iptables rules: builds and containers use the host's network.
set -euo pipefail

if docker info >/dev/null 2>&1; then
    exit 0
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: no Docker engine; install Docker (and debootstrap for the base image), then rerun" >&2
        exit 2
    fi
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io debootstrap >&2
fi
log="${TMPDIR:-/tmp}/inpars-dockerd.log"
dockerd --bridge=none --iptables=false >"$log" 2>&1 &
pid=$!
for _ in $(seq 60); do
    if docker info >/dev/null 2>&1; then
        echo "$pid"
        exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
done
echo "error: dockerd did not start; its log:" >&2
tail -20 "$log" >&2
exit 1
