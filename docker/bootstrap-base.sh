#!/usr/bin/env bash
# Build the image's base locally: the Debian release the published base pins (debian:<release>-slim), bootstrapped
# from Debian's own packages and imported as a Docker image. CI builds the Dockerfile on this twin because no image
# registry may be reachable; apt inside the build then reads the same archive and suites as the published base.
#   docker/bootstrap-base.sh [RELEASE [IMAGE]]      default: trixie local/debian:trixie
set -euo pipefail

release="${1:-trixie}"
image="${2:-local/debian:${release}}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "base image $image exists"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed: apt-get install debootstrap" >&2; exit 2; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase "$release" "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# The suites and keyring of the official image (its /etc/apt/sources.list.d/debian.sources), and its apt cleanliness.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: ${mirror}
Suites: ${release} ${release}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${release}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
echo "base image $image bootstrapped from Debian $release"
